using System.Net;
using GeoRelay.Transport.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Hosting;

/// <summary>
/// What a node's HTTP endpoints (admin, web) share: Kestrel on one address of the topology, HTTPS with the node's
/// certificate when it has one, the node's loggers, and a lifetime the node owns.
/// </summary>
internal static class NodeWebHost
{
    /// <summary>A slim builder listening on <paramref name="endPoint"/> (every address of a host name).</summary>
    public static WebApplicationBuilder CreateBuilder(string name, EndPoint endPoint, NodeTls? tls, ILoggerFactory loggers, Action<KestrelServerOptions>? limits = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ApplicationName = name });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggers); // the node's log format and levels
        builder.Services.AddSingleton<IHostLifetime, NodeOwnedLifetime>();
        builder.WebHost.UseKestrel(kestrel =>
        {
            limits?.Invoke(kestrel);
            void Configure(ListenOptions listen)
            {
                if (tls is null) return;
                listen.Protocols = HttpProtocols.Http1;
                listen.UseHttps(static (_, _, state, _) => ValueTask.FromResult(((NodeTls)state!).ServerOptions(requireClientCertificate: false)), tls);
            }
            switch (endPoint)
            {
                case IPEndPoint ip: kestrel.Listen(ip, Configure); break;
                case DnsEndPoint { Host: "localhost" } local: kestrel.ListenLocalhost(local.Port, Configure); break;
                case DnsEndPoint dns:
                    foreach (var address in Dns.GetHostAddresses(dns.Host)) kestrel.Listen(address, dns.Port, Configure);
                    break;
                default: throw new ArgumentException($"cannot listen on {endPoint}", nameof(endPoint));
            }
        });
        return builder;
    }

    /// <summary>The address Kestrel bound (the port, when 0 was asked for), else the one asked for.</summary>
    public static EndPoint BoundEndPoint(WebApplication app, EndPoint requested)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
        if (addresses is { Count: > 0 } && Uri.TryCreate(addresses.First(), UriKind.Absolute, out var uri) && IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip))
            return new IPEndPoint(ip, uri.Port);
        return requested;
    }

    /// <summary>Stops within 2 s (connections still open are cut) and releases the application.</summary>
    public static async ValueTask StopAsync(WebApplication app)
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await app.StopAsync(stop.Token).ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// The node's host answers SIGTERM and disposes its endpoints after the drain; the default console
    /// lifetime would also react to the signal and cancel a start still binding.
    /// </summary>
    private sealed class NodeOwnedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
