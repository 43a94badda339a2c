using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace GeoRelay.Server.Admin.Console;

/// <summary>
/// The console's routes on the admin endpoint: <c>GET /</c>, the page (one embedded HTML file with its CSS and script, no
/// external resources), and <c>GET /console/events</c>, Server-Sent Events with a <see cref="ConsoleSnapshot"/> each second.
/// </summary>
internal static class ConsoleRoutes
{
    private const string PageResource = "GeoRelay.Server.Admin.Console.console.html";
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(1);

    /// <summary>The routes that also accept <c>?token=</c>.</summary>
    public static bool Serves(PathString path) => path == "/" || path == "/console/events";

    public static void Map(WebApplication app, ClusterConsole console)
    {
        app.MapGet("/", ServePageAsync);
        app.MapGet("/console/events", context => StreamAsync(context, console));
    }

    private static async Task ServePageAsync(HttpContext context)
    {
        await using var page = typeof(ConsoleRoutes).Assembly.GetManifestResourceStream(PageResource)
            ?? throw new InvalidOperationException("console.html is not embedded in GeoRelay.Server");
        NoLeaks(context.Response);
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.ContentLength = page.Length;
        await page.CopyToAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task StreamAsync(HttpContext context, ClusterConsole console)
    {
        var response = context.Response;
        NoLeaks(response);
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers["X-Accel-Buffering"] = "no";
        var gone = context.RequestAborted;
        using var timer = new PeriodicTimer(Every);
        try
        {
            do
            {
                var snapshot = await console.SnapshotAsync(gone).ConfigureAwait(false);
                var json = JsonSerializer.SerializeToUtf8Bytes(snapshot, ConsoleJson.Default.ConsoleSnapshot);
                response.BodyWriter.Write("data: "u8);
                response.BodyWriter.Write(json);
                response.BodyWriter.Write("\n\n"u8);
                await response.BodyWriter.FlushAsync(gone).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(gone).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (gone.IsCancellationRequested)
        {
            // The page was closed.
        }
    }

    /// <summary>The token may be in the URL: keep the page out of caches and its address out of Referer headers.</summary>
    private static void NoLeaks(HttpResponse response)
    {
        response.Headers.CacheControl = "no-store";
        response.Headers["Referrer-Policy"] = "no-referrer";
        // The page loads nothing from elsewhere; say so, so an injected script could not either.
        response.Headers.ContentSecurityPolicy = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'";
    }
}
