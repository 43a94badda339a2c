using System.Net;
using System.Net.WebSockets;
using System.Text;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using GeoRelay.Transport.Security;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Web;

/// <summary>
/// The web endpoint of a node with tokens on (auth): the token a web request carries (header, or `?token=` for
/// EventSource) is the one its upstream subscription presents, and the node's refusal comes back before the stream
/// starts: 401 without a usable token, 403 for a token without the learn scope or the prefix, with the node's reason.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class WebTokenTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static string Mint(ClusterFixture cluster, string subject, TokenScopes scopes, string prefix = "")
    {
        using var authority = TokenAuthority.LoadKeyFile(cluster.Topology.Auth!.KeyFile);
        return authority.Mint(new TokenClaims(subject, DateTimeOffset.UtcNow + TimeSpan.FromHours(1), scopes, [Encoding.UTF8.GetBytes(prefix)]));
    }

    [Test]
    public async Task ATokenWithoutTheLearnScopeIsRefusedWithTheNodesReasonAndALearnTokenStreams()
    {
        using var cluster = new ClusterFixture("web.yaml", yaml => yaml + "\nauth: { key-file: keys }\n");
        File.WriteAllText(Path.Combine(cluster.Directory, "keys"), TokenKeyFile.Format([TokenKeyFile.NewKey("k1")]));
        await cluster.StartAllAsync();
        // A member refuses learners until the leader feeds it; the refusals tested here must be the token's.
        await cluster.Processes["m1"].WaitForLineAsync(@"Connected to leader \(Leader\)", Patience);
        string web = cluster.Topology.GetNode("m1").Web!.Value.ToString();
        using var deadline = new CancellationTokenSource(Patience);
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };

        await WebClusterPublisher.PublishAsync(cluster, [(Encoding.UTF8.GetBytes("orders/1"), Encoding.UTF8.GetBytes("first"))], token: Mint(cluster, "writer", TokenScopes.Publish));

        // No token at all.
        using (var none = await SseStream.SendAsync(http, $"http://{web}/stream?from=1", ct: deadline.Token))
        {
            Assert.That(none.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That(await none.Content.ReadAsStringAsync(deadline.Token), Does.Contain("\"error\":\"missing-token\"").And.Contain("token with the learn scope"));
        }

        // A valid token for publishing only: the node's reason, as 403.
        string writer = Mint(cluster, "writer", TokenScopes.Publish);
        using (var publishOnly = await SseStream.SendAsync(http, $"http://{web}/stream?from=1", bearer: writer, ct: deadline.Token))
        {
            Assert.That(publishOnly.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
            Assert.That(await publishOnly.Content.ReadAsStringAsync(deadline.Token), Does.Contain("token for 'writer' does not allow Learn"));
        }

        // The same over WebSocket: refused before the upgrade, with the status.
        using (var socket = new ClientWebSocket { Options = { CollectHttpResponseDetails = true } })
        {
            Assert.That(async () => await socket.ConnectAsync(new Uri($"ws://{web}/stream?from=1&token={Uri.EscapeDataString(writer)}"), deadline.Token),
                Throws.InstanceOf<WebSocketException>());
            Assert.That(socket.HttpStatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
        }

        // A learn token confined to other keys, asking for all of them.
        string ordersOnly = Mint(cluster, "orders-reader", TokenScopes.Learn, "invoices/");
        using (var outside = await SseStream.SendAsync(http, $"http://{web}/stream?from=1&prefix=orders/", bearer: ordersOnly, ct: deadline.Token))
        {
            Assert.That(outside.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
            Assert.That(await outside.Content.ReadAsStringAsync(deadline.Token), Does.Contain("does not allow key prefix 'orders/'"));
        }

        // A token signed with a key the cluster does not hold.
        using (var forged = await SseStream.SendAsync(http, $"http://{web}/stream?from=1", bearer: ForeignToken(cluster), ct: deadline.Token))
        {
            Assert.That(forged.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That(await forged.Content.ReadAsStringAsync(deadline.Token), Does.Contain("\"error\":\"invalid-token\"").And.Contain("which this node does not hold"));
        }

        // A learn token, in the query as EventSource sends it: the stream flows.
        string reader = Mint(cluster, "reader", TokenScopes.Learn);
        using var stream = await SseStream.OpenAsync(http, $"http://{web}/stream?from=1&token={Uri.EscapeDataString(reader)}", ct: deadline.Token);
        WebMessage entry;
        do entry = await stream.NextAsync(deadline.Token) ?? throw new EndOfStreamException("the stream ended");
        while (entry.Key != "orders/1");
        Assert.That(entry.Payload, Is.EqualTo("first"));
        Assert.That(cluster.Processes["m1"].Output, Does.Contain("refused with 403: the token was refused: token for 'writer' does not allow Learn"));
    }

    private static string ForeignToken(ClusterFixture cluster)
    {
        var keys = Path.Combine(cluster.Directory, "foreign.keys");
        File.WriteAllText(keys, TokenKeyFile.Format([TokenKeyFile.NewKey("other")]));
        using var authority = TokenAuthority.LoadKeyFile(keys);
        return authority.Mint(new TokenClaims("stranger", DateTimeOffset.UtcNow + TimeSpan.FromHours(1), TokenScopes.Learn, [Array.Empty<byte>()]));
    }
}
