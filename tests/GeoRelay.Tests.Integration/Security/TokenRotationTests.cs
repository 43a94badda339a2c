using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using GeoRelay.Codec;
using GeoRelay.TestUtilities;
using GeoRelay.Transport.Security;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Security;

/// <summary>
/// Token key rotation on real processes: a member whose key file starts in the older single-key format, a key added
/// and then the old one removed, a token revoked, each taken in by SIGHUP while learners stay connected.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class TokenRotationTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    private static async Task<string> RunAsync(ClusterFixture cluster, string arguments)
    {
        var run = cluster.Run("georelay", arguments);
        Assert.That(await run.WaitForExitAsync(Patience), Is.EqualTo(0), run.Output);
        return run.Output;
    }

    private static async Task<(string Token, string Id)> MintAsync(ClusterFixture cluster, string subject, string expectedKey)
    {
        string output = await RunAsync(cluster, $"token --config \"{cluster.ConfigPath}\" --subject {subject} --ttl 1h");
        var token = Regex.Match(output, @"^grt2\.\S+$", RegexOptions.Multiline).Value;
        var id = Regex.Match(output, $@"token ([0-9a-f]{{16}}) for '{subject}', signed with key '{expectedKey}'");
        Assert.That(token, Does.StartWith($"grt2.{expectedKey}."), output);
        Assert.That(id.Success, Is.True, output);
        return (token, id.Groups[1].Value);
    }

    private static async Task PublishAsync(ClusterFixture cluster, int count)
    {
        var p = cluster.Run("publish", $"publish --leader {cluster.Topology.Leader.Publish} --wait committed --exactly-once false", string.Concat(Enumerable.Repeat("entry\n", count)));
        Assert.That(await p.WaitForExitAsync(Patience), Is.EqualTo(0), p.Output);
    }

    [Test]
    public async Task RotatedKeysAndRevocationsTakeEffectOnSighupCuttingOnlyTheConnectionsTheyRevoke()
    {
        using var cluster = new ClusterFixture("two-nodes.yaml", yaml => yaml + "\nauth: { key-file: keys, revoked-file: revoked, publish: false }\n");
        // The key file as releases before rotation wrote it: one base64 key. It reads as the key 'legacy'.
        var oldKey = RandomNumberGenerator.GetBytes(32);
        File.WriteAllText(Path.Combine(cluster.Directory, "keys"), Convert.ToBase64String(oldKey) + "\n");
        File.WriteAllText(Path.Combine(cluster.Directory, "revoked"), "# nothing revoked yet\n");
        await cluster.StartAllAsync();
        var m1 = cluster.Processes["m1"];
        // A member refuses learners until the leader feeds it, and these raw learners do not resume elsewhere.
        await m1.WaitForLineAsync(@"Connected to leader \(Leader\)", Patience);
        var learners = cluster.Topology.GetNode("m1").Learners!.Value.ToEndPoint();
        string name = cluster.Topology.Cluster;
        var all = new List<RawLearner>();
        async Task<RawLearner> ConnectAsync(string who, string token)
        {
            var learner = await RawLearner.ConnectAsync(learners, who, name, token);
            all.Add(learner);
            return learner;
        }
        try
        {
            // A token of the first format, as an older release minted it, and one minted now with the same key.
            string firstFormat = LegacyTokens.Mint(oldKey, new TokenClaims("alice", DateTimeOffset.UtcNow.AddHours(1), TokenScopes.Learn, [[]]));
            var (legacyToken, _) = await MintAsync(cluster, "dave", TokenAuthority.LegacyKeyId);
            var alice1 = await ConnectAsync("alice-1", firstFormat);
            var dave1 = await ConnectAsync("dave-1", legacyToken);
            await PublishAsync(cluster, 10);
            foreach (var l in all) await l.WaitUntilAsync(x => x.LastIndex == 10, "delivered 10", Patience);

            // Rotation: a new key signs from now on; tokens of the old one keep working, new connections included.
            string added = await RunAsync(cluster, "token --add-key \"" + Path.Combine(cluster.Directory, "keys") + "\" --kid k2");
            Assert.That(added, Does.Contain("converted").And.Contain("'legacy'"));
            m1.HangUp();
            await m1.WaitForLineAsync(@"Reloaded token keys: legacy, k2 \(k2 signs\); revoked: 0 key\(s\), 0 token\(s\)", Patience);
            var (bobToken, _) = await MintAsync(cluster, "bob", "k2");
            var (carolToken, carolId) = await MintAsync(cluster, "carol", "k2");
            var alice2 = await ConnectAsync("alice-2", firstFormat);
            var bob = await ConnectAsync("bob", bobToken);
            var carol = await ConnectAsync("carol", carolToken);
            await PublishAsync(cluster, 10);
            foreach (var l in all) await l.WaitUntilAsync(x => x.LastIndex == 20, "delivered 20", Patience);
            Assert.That(all.TrueForAll(l => l.Welcomed && !l.Closed), Is.True, string.Join("\n", all.Select(l => $"{l.Name}: {l}")));

            // The old key removed and carol's token revoked: their connections are cut, bob's stays.
            await RunAsync(cluster, "token --remove-key \"" + Path.Combine(cluster.Directory, "keys") + "\" --kid legacy");
            File.AppendAllText(Path.Combine(cluster.Directory, "revoked"), $"token {carolId}\n");
            m1.HangUp();
            await m1.WaitForLineAsync(@"Reloaded token keys: k2 \(k2 signs\); revoked: 0 key\(s\), 1 token\(s\)", Patience);
            foreach (var cut in new[] { alice1, alice2, dave1, carol })
            {
                await cut.WaitUntilAsync(x => x.Closed, "cut", Patience);
                Assert.That(cut.Error?.Code, Is.EqualTo(CodecError.Unauthorized), $"{cut.Name}: {cut}");
            }
            Assert.That(alice1.Error!.Value.Message, Does.Contain("signed with key 'legacy', which is no longer held"));
            Assert.That(carol.Error!.Value.Message, Does.Contain($"token {carolId} for 'carol' is revoked"));
            await m1.WaitForLineAsync(@"Cut carol at .* \(TokenRevoked\)", Patience);

            // New connections with those tokens are refused; bob's connection, never cut, gets what comes next.
            var aliceAgain = await ConnectAsync("alice-3", firstFormat);
            await aliceAgain.WaitUntilAsync(x => x.Closed, "refused", Patience);
            Assert.That(aliceAgain.Welcomed, Is.False);
            Assert.That(aliceAgain.Error?.Message, Does.Contain("no key 'legacy'"));
            var carolAgain = await ConnectAsync("carol-2", carolToken);
            await carolAgain.WaitUntilAsync(x => x.Closed, "refused", Patience);
            Assert.That(carolAgain.Welcomed, Is.False);
            await PublishAsync(cluster, 10);
            await bob.WaitUntilAsync(x => x.LastIndex == 30, "delivered 30 on its first connection", Patience);
            Assert.That((bob.Closed, bob.Error), Is.EqualTo((false, ((CodecError, string)?)null)), bob.ToString());
            Assert.That(m1.Output, Does.Not.Contain("grt1.").And.Not.Contain("grt2."), "tokens are never logged");
        }
        finally
        {
            foreach (var l in all) await l.DisposeAsync();
        }
    }
}
