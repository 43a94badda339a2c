using System.Text;
using GeoRelay.Cli;
using GeoRelay.TestUtilities;
using GeoRelay.Transport.Security;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Security;

/// <summary>
/// `georelay tail` and `georelay publish` against real processes with tokens on: a token the cluster refuses ends
/// the command with the node's reason on stderr and exit 77, instead of reconnecting for ever.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RefusedTokenTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static async Task<ClusterFixture> StartAsync()
    {
        var cluster = new ClusterFixture("two-nodes.yaml", yaml => yaml + "\nauth: { key-file: keys }\n");
        File.WriteAllText(Path.Combine(cluster.Directory, "keys"), TokenKeyFile.Format([TokenKeyFile.NewKey("k1")]));
        await cluster.StartAllAsync();
        // A member refuses learners until the leader feeds it; the refusals tested here must be the token's.
        await cluster.Processes["m1"].WaitForLineAsync(@"Connected to leader \(Leader\)", Patience);
        return cluster;
    }

    /// <summary>Mints with the cluster's key (or another), and writes the token to a file for --token-file.</summary>
    private static string TokenFile(ClusterFixture cluster, string name, TokenScopes scopes, TimeSpan ttl, string prefix = "", string? keyFile = null)
    {
        using var authority = TokenAuthority.LoadKeyFile(keyFile ?? cluster.Topology.Auth!.KeyFile);
        var token = authority.Mint(new TokenClaims(name, DateTimeOffset.UtcNow + ttl, scopes, [Encoding.UTF8.GetBytes(prefix)]));
        var path = Path.Combine(cluster.Directory, name + ".token");
        File.WriteAllText(path, token);
        return path;
    }

    private static async Task<GeoRelayProcess> ExitedAsync(GeoRelayProcess run, int expected)
    {
        Assert.That(await run.WaitForExitAsync(Patience), Is.EqualTo(expected), run.Output);
        return run;
    }

    [Test]
    public async Task TailWithARefusedTokenExits77SayingWhyInsteadOfRetrying()
    {
        using var cluster = await StartAsync();
        string learners = cluster.Topology.GetNode("m1").Learners!.Value.ToString();
        var m1 = cluster.Processes["m1"];
        var otherKeys = Path.Combine(cluster.Directory, "other-cluster.keys");
        File.WriteAllText(otherKeys, TokenKeyFile.Format([TokenKeyFile.NewKey("other")]));
        var publisher = TokenFile(cluster, "publisher", TokenScopes.Publish, TimeSpan.FromHours(1));
        var publish = cluster.Run("publish", $"publish --leader {cluster.Topology.Leader.Publish} --wait committed --exactly-once false --key orders/1 --token-file \"{publisher}\"", "first\n");
        await ExitedAsync(publish, 0);

        // What the token allows still works: the refusals below are the tokens'.
        var good = TokenFile(cluster, "reader", TokenScopes.Learn, TimeSpan.FromHours(1));
        var tail = await ExitedAsync(cluster.Run("tail-good", $"tail --connect {learners} --count 1 --token-file \"{good}\""), 0);
        Assert.That(tail.Output, Does.Contain("1\tfirst"));

        var cases = new (string Token, string Reason)[]
        {
            (TokenFile(cluster, "stranger", TokenScopes.Learn, TimeSpan.FromHours(1), keyFile: otherKeys),
                "token signed with key 'other', which this node does not hold (removed, or never added)"),
            (TokenFile(cluster, "late", TokenScopes.Learn, TimeSpan.FromSeconds(-1)), "token for 'late' expired at "),
            (TokenFile(cluster, "writer", TokenScopes.Publish, TimeSpan.FromHours(1)), "token for 'writer' does not allow Learn"),
            // Welcomed, then refused at Subscribe: the case that used to reconnect for ever.
            (TokenFile(cluster, "orders-only", TokenScopes.Learn, TimeSpan.FromHours(1), "orders/"),
                "the token for 'orders-only' does not allow key prefix ''; subscribe with one of its prefixes"),
        };
        foreach (var (token, reason) in cases)
        {
            var refused = await ExitedAsync(cluster.Run("tail-refused", $"tail --connect {learners} --token-file \"{token}\""), ClientExitCodes.TokenRefused);
            Assert.That(refused.Errors, Does.StartWith($"error: {learners} refused the token: {reason}"), refused.Output);
        }
        // The node logged each refusal saying its reason once.
        Assert.That(m1.Output, Does.Contain(": Unauthorized: token for 'late' expired at ").And.Not.Contain("Unauthorized: Unauthorized"));
    }

    [Test]
    public async Task PublishWithARefusedTokenExits77SayingWhy()
    {
        using var cluster = await StartAsync();
        string leader = cluster.Topology.Leader.Publish!.Value.ToString();
        var reader = TokenFile(cluster, "reader", TokenScopes.Learn, TimeSpan.FromHours(1));
        var refused = await ExitedAsync(cluster.Run("publish-reader", $"publish --leader {leader} --token-file \"{reader}\"", "x\n"), ClientExitCodes.TokenRefused);
        Assert.That(refused.Errors, Does.Contain($"error: {leader} refused the token: token for 'reader' does not allow Publish"), refused.Output);

        // Welcomed, then refused at the first key outside the token's prefixes.
        var orders = TokenFile(cluster, "orders-writer", TokenScopes.Publish, TimeSpan.FromHours(1), "orders/");
        var outside = await ExitedAsync(cluster.Run("publish-outside", $"publish --leader {leader} --key payroll/1 --token-file \"{orders}\"", "x\n"), ClientExitCodes.TokenRefused);
        Assert.That(outside.Errors, Does.Contain($"error: {leader} refused the token: the token for 'orders-writer' does not allow publishing key 'payroll/1'"), outside.Output);
        await ExitedAsync(cluster.Run("publish-inside", $"publish --leader {leader} --key orders/1 --token-file \"{orders}\"", "x\n"), 0);
    }

    [Test]
    public async Task TailPointedAtAPortThatTakesNoLearnersExits78()
    {
        using var cluster = await StartAsync();
        string peerPort = cluster.Topology.GetNode("m1").Listen!.Value.ToString();
        var good = TokenFile(cluster, "reader", TokenScopes.Learn, TimeSpan.FromHours(1));
        var refused = await ExitedAsync(cluster.Run("tail-peer-port", $"tail --connect {peerPort} --token-file \"{good}\""), ClientExitCodes.RefusedEverywhere);
        Assert.That(refused.Errors, Does.StartWith($"error: {peerPort} refused this client (UnknownNode): "), refused.Output);
    }
}
