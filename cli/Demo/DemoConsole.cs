using System.Net;
using GeoRelay.Server.Admin;
using GeoRelay.Server.Admin.Console;
using GeoRelay.Server.Security;
using GeoRelay.Topology;
using GeoRelay.Transport.Security;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Cli.Demo;

/// <summary>
/// The demo's live console: the admin endpoint of the topology's leader node, on its (free, loopback) admin address, with
/// the console's view taken from every node in this process. It serves plain HTTP, as a browser does not trust the demo's
/// throwaway CA, and asks for an admin token from a key made for this run: the address printed carries it.
/// </summary>
internal sealed class DemoConsole : IAsyncDisposable
{
    private readonly AdminServer _server;
    private readonly ClusterConsole _console;
    private readonly TokenVerifier _tokens;

    public string Address { get; }

    private DemoConsole(AdminServer server, ClusterConsole console, TokenVerifier tokens, string address)
    {
        _server = server;
        _console = console;
        _tokens = tokens;
        Address = address;
    }

    public static async Task<DemoConsole> StartAsync(LocalCluster cluster, ILoggerFactory loggers)
    {
        var topology = cluster.Topology;
        string host = topology.LeaderId;
        var endPoint = topology.GetNode(host).Admin is { } admin
            ? admin.ToEndPoint()
            : new IPEndPoint(IPAddress.Loopback, LocalCluster.FreeLoopbackPorts(1)[0]);
        var tokens = new TokenVerifier(new TokenAuthority([TokenKeyFile.NewKey()], TokenRevocations.None), topologyPath: "");
        // Asked in-process, so the view goes on while the demo stops nodes (the node this endpoint belongs to too).
        var console = new ClusterConsole(topology, host, _ => Task.FromResult(Statuses(cluster)), note: null);
        try
        {
            var node = AdminNode.For(cluster.Running(host) ?? throw new InvalidOperationException($"{host} is not running"));
            var server = await AdminServer.StartAsync(endPoint, node, metrics: null, loggers, console: console,
                access: AdminAccess.WithTokens(tokens), tls: false);
            string token = tokens.Current.Authority.Mint(new TokenClaims("demo-console", DateTimeOffset.UtcNow.AddDays(1), TokenScopes.Admin,
                [Array.Empty<byte>()]) { Id = TokenClaims.NewId() });
            return new DemoConsole(server, console, tokens, $"http://{server.EndPoint}/?token={Uri.EscapeDataString(token)}");
        }
        catch
        {
            console.Dispose();
            tokens.Dispose();
            throw;
        }
    }

    private static Dictionary<string, (NodeStatusReport?, string?)> Statuses(LocalCluster cluster)
    {
        var answers = new Dictionary<string, (NodeStatusReport?, string?)>(StringComparer.Ordinal);
        foreach (var id in cluster.Topology.Nodes.Keys)
            answers[id] = cluster.Running(id) is { } node ? (AdminNode.For(node).Status(), null) : (null, "stopped by the demo");
        return answers;
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _console.Dispose();
        _tokens.Dispose();
    }
}
