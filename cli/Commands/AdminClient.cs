using System.CommandLine;
using GeoRelay.Server.Admin;
using GeoRelay.Topology;

namespace GeoRelay.Cli;

/// <summary>
/// What the commands that talk to a node's admin endpoint share (<c>status</c>, <c>learners</c>, <c>blacklist</c>): the
/// <c>--admin</c>, <c>--token-file</c> and <c>--ca</c> options, and one request with the token, over HTTPS when given a CA.
/// </summary>
internal sealed class AdminClient(bool adminRequired = true)
{
    private readonly ClientSecurityOptions _security = new();

    public Option<string> Admin { get; } = new("--admin")
    {
        Description = "The node's admin endpoint, HOST:PORT (a bare port means 127.0.0.1)",
        Required = adminRequired,
    };

    /// <summary>The <c>--ca</c> option (HTTPS to nodes with <c>tls</c>).</summary>
    public Option<string?> Ca => _security.Ca;

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
        if (!TryCredentials(parse, command, caFromTopology: null, out var token, out var tls)) return (null, 2);
        using (tls)
        {
            var answer = await AdminRequest.SendAsync(endpoint, method, path, json, token, tls, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
            if (answer.Body is not null) return (answer.Body, 0);
            Console.Error.WriteLine($"{command}: {answer.Error}");
            if (answer.Status == 401 && token is null)
                Console.Error.WriteLine("  pass a token with the admin scope: --token-file FILE, or GEORELAY_TOKEN");
            if (answer.Status is null && tls is null && answer.Failure is HttpRequestException { InnerException: IOException or HttpIOException })
                Console.Error.WriteLine("  if the node has tls, its admin endpoint serves HTTPS: pass --ca with the cluster's CA certificate");
            return (null, 1);
        }
    }

    /// <summary>
    /// The token (<c>--token-file</c> or GEORELAY_TOKEN) and the TLS settings (<c>--ca</c>, else <paramref name="caFromTopology"/>);
    /// false, having printed why, when a file cannot be read.
    /// </summary>
    public bool TryCredentials(ParseResult parse, string command, string? caFromTopology, out string? token, out GeoRelay.Transport.Security.NodeTls? tls)
    {
        token = null;
        tls = null;
        try
        {
            token = _security.Token(parse);
            tls = _security.Tls(parse) ?? (caFromTopology is null ? null : GeoRelay.Transport.Security.NodeTls.Load(caFromTopology, null, null));
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            Console.Error.WriteLine($"{command}: {e.Message}");
            return false;
        }
    }
}
