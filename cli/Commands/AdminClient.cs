using System.CommandLine;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using GeoRelay.Server.Admin;
using GeoRelay.Topology;

namespace GeoRelay.Cli;

/// <summary>
/// What the commands that talk to a node's admin endpoint share (<c>status</c>, <c>learners</c>, <c>blacklist</c>): the
/// <c>--admin</c>, <c>--token-file</c> and <c>--ca</c> options, and one request with the token, over HTTPS when given a CA.
/// </summary>
internal sealed class AdminClient
{
    private readonly ClientSecurityOptions _security = new();

    public Option<string> Admin { get; } = new("--admin")
    {
        Description = "The node's admin endpoint, HOST:PORT (a bare port means 127.0.0.1)",
        Required = true,
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Admin);
        // A token with the admin scope; --ca when the node has tls (its admin endpoint then serves HTTPS).
        _security.AddTo(command);
    }

    /// <summary>
    /// Sends one request; returns the body of a 2xx answer, or null having printed why not (the node's error message for a
    /// refusal) on stderr. <paramref name="exitCode"/> is 2 for a bad command line, 1 for anything the node or network said.
    /// </summary>
    public async Task<(string? Body, int ExitCode)> SendAsync(ParseResult parse, string command, HttpMethod method, string path, string? json, CancellationToken ct)
    {
        if (!NodeEndpoint.TryParseAdmin(parse.GetValue(Admin), out var endpoint, out var error))
        {
            Console.Error.WriteLine($"--admin: {error}");
            return (null, 2);
        }
        string? token;
        GeoRelay.Transport.Security.NodeTls? tls;
        try
        {
            token = _security.Token(parse);
            tls = _security.Tls(parse);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            Console.Error.WriteLine($"{command}: {e.Message}");
            return (null, 2);
        }
        using (tls)
        {
            var handler = new SocketsHttpHandler();
            if (tls is not null) handler.SslOptions = tls.ClientOptions(endpoint.Host, expectedNodeId: null);
            using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
            string url = $"{(tls is null ? "http" : "https")}://{endpoint}{path}";
            using var request = new HttpRequestMessage(method, url);
            if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
            try
            {
                using var response = await http.SendAsync(request, ct).ConfigureAwait(false);
                string body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
                if (response.IsSuccessStatusCode) return (body, 0);
                Console.Error.WriteLine($"{command}: {method} {url} answered {(int)response.StatusCode} {response.ReasonPhrase}: {ErrorMessage(body)}");
                if ((int)response.StatusCode == 401 && token is null)
                    Console.Error.WriteLine("  pass a token with the admin scope: --token-file FILE, or GEORELAY_TOKEN");
                return (null, 1);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                Console.Error.WriteLine($"{command}: cannot read {url}: {e.Message}");
                if (tls is null && e is HttpRequestException { InnerException: IOException or HttpIOException })
                    Console.Error.WriteLine("  if the node has tls, its admin endpoint serves HTTPS: pass --ca with the cluster's CA certificate");
                return (null, 1);
            }
        }
    }

    /// <summary>The message of an admin error body, or the body itself when it is not one.</summary>
    private static string ErrorMessage(string body)
    {
        try
        {
            if (JsonSerializer.Deserialize(body, AdminJson.Default.AdminError) is { Message: { } message }) return message;
        }
        catch (JsonException) { }
        return body.Length == 0 ? "(no body)" : body;
    }
}
