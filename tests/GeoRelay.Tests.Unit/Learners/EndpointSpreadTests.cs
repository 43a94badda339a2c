using GeoRelay.LearnerClient;
using GeoRelay.LearnerClient.Internal;
using GeoRelay.Transport;
using GeoRelay.Codec.Frames;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Learners;

// Learners spread over their own datacenter's endpoints, and go where a full or draining node points them.
[TestFixture]
public sealed class EndpointSpreadTests
{
    private static readonly string[] Local = ["10.0.1.1:7300", "10.0.1.2:7300", "10.0.1.3:7300", "10.0.1.4:7300"];
    private static readonly string[] Remote = ["10.0.2.1:7300", "10.0.3.1:7300"];

    private static LearnerClientOptions Options => LearnerClientOptions.Default with { LocalEndpoints = Local, Endpoints = Remote };

    [Test]
    public void EachClientTriesTheLocalEndpointsFirstInItsOwnOrderThenTheOthersAsGiven()
    {
        var firsts = new Dictionary<string, int>();
        var orders = new HashSet<string>();
        for (int i = 0; i < 200; i++)
        {
            using var client = new GeoRelay.LearnerClient.LearnerClient(Options);
            var order = client.DialOrder;
            Assert.That(order.Take(4), Is.EquivalentTo(Local), "the local endpoints first, each once");
            Assert.That(order.Skip(4), Is.EqualTo(Remote), "then the others, in the order given");
            firsts[order[0]] = firsts.GetValueOrDefault(order[0]) + 1;
            orders.Add(string.Join(",", order));
        }
        // Uniform over 4: an endpoint never first in 200 draws has probability 4 * 0.75^200, about 1e-25.
        Assert.That(firsts.Keys, Is.EquivalentTo(Local), string.Join(", ", firsts.Select(f => $"{f.Key}: {f.Value}")));
        Assert.That(orders, Has.Count.GreaterThan(1));
    }

    [Test]
    public void WithoutLocalEndpointsTheOrderIsTheOneGiven()
    {
        using var client = new GeoRelay.LearnerClient.LearnerClient(LearnerClientOptions.Default with { Endpoints = Remote });
        Assert.That(client.DialOrder, Is.EqualTo(Remote));
    }

    [Test]
    public void AnEndpointInBothListsIsTriedOnceAmongTheLocalOnes()
    {
        var options = LearnerClientOptions.Default with { LocalEndpoints = ["10.0.1.1:7300", "10.0.1.2:7300"], Endpoints = ["10.0.1.2:7300", "10.0.2.1:7300"] };
        var order = EndpointOrder.For(options, new Random(7));
        Assert.That(order, Has.Length.EqualTo(3));
        Assert.That(order.Take(2), Is.EquivalentTo(new[] { "10.0.1.1:7300", "10.0.1.2:7300" }));
        Assert.That(order[2], Is.EqualTo("10.0.2.1:7300"));
    }

    [Test]
    public void LocalEndpointsAloneAreEnoughAndBadOnesAreNamed()
    {
        Assert.DoesNotThrow(() => (LearnerClientOptions.Default with { LocalEndpoints = Local }).Validate());
        var none = Assert.Throws<ArgumentException>(() => LearnerClientOptions.Default.Validate())!;
        Assert.That(none.Message, Does.StartWith("at least one endpoint (host:port) is required, in Endpoints or LocalEndpoints"));
        var bad = Assert.Throws<ArgumentException>(() => (LearnerClientOptions.Default with { LocalEndpoints = ["10.0.1.1"] }).Validate())!;
        Assert.That((bad.ParamName, bad.Message), Is.EqualTo(("LocalEndpoints", "'10.0.1.1' is not host:port (Parameter 'LocalEndpoints')")));
        var badRemote = Assert.Throws<ArgumentException>(() => (Options with { Endpoints = ["x:0"] }).Validate())!;
        Assert.That(badRemote.ParamName, Is.EqualTo("Endpoints"));
    }

    [TestCase("p1 is full: it serves 2 learners, the limit set by max-learners of node 'p1' in t.yaml; try p2 at 127.0.0.1:7032 or a1 at 127.0.0.1:7042",
        "127.0.0.1:7032", "127.0.0.1:7042")]
    [TestCase("p2 is draining and takes no new learners; try relay-2.eu.example.com:7300 at relay-2.eu.example.com:7300.", "relay-2.eu.example.com:7300")]
    [TestCase("x is full; try p2 at [::1]:7032, a1 at 10.0.0.1:7300", "[::1]:7032", "10.0.0.1:7300")]
    [TestCase("p1 has had no feed from the leader for 900 ms; try another relay or member")]
    [TestCase("look at 127.0.0.1:7032 first; then try nothing")]
    [TestCase("p1 is full; try p2 at 127.0.0.1:70", "127.0.0.1:70")] // cut short it still parses (the node only names whole ones)
    [TestCase("p1 is full; try p2 at 127.0.0.1")]
    [TestCase(null)]
    public void HintsAreTheAddressesNamedAfterTry(string? message, params string[] expected) =>
        Assert.That(RefusalHint.Addresses(message), Is.EqualTo(expected));

    private static EndpointDialer Dialer(params string[] endpoints) =>
        new(LearnerClientOptions.Default with { Endpoints = endpoints }, endpoints, NodeKind.Learner, ConnectionOptions.Default,
            Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

    private static List<int> Walk(EndpointRound round, Func<int, string?> refusalAt)
    {
        var tried = new List<int>();
        while (round.TryNext(out int i))
        {
            tried.Add(i);
            round.Follow(refusalAt(i));
        }
        return tried;
    }

    [Test]
    public void ARoundGoesNextToTheEndpointARefusalNamesThenOnInOrderTryingEachOnce()
    {
        using var dialer = Dialer("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4");
        // The first names the third; the third names the first again (tried) and then the second.
        var tried = Walk(new EndpointRound(dialer), i => i switch
        {
            0 => "0 is full; try c at 127.0.0.1:3",
            2 => "2 is full; try a at 127.0.0.1:1 or b at 127.0.0.1:2",
            _ => null,
        });
        Assert.That(tried, Is.EqualTo(new[] { 0, 2, 1, 3 }));
    }

    [Test]
    public void AHintNamingAnEndpointTheClientDoesNotKnowIsIgnored()
    {
        using var dialer = Dialer("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3");
        var round = new EndpointRound(dialer);
        Assert.That(round.TryNext(out int first), Is.True);
        Assert.That(round.Follow("full; try z at 10.9.9.9:7300"), Is.Null);
        Assert.That(round.Follow("full; try c at localhost:3"), Is.Null, "another spelling of a host is another host");
        Assert.That(round.TryNext(out int second), Is.True);
        Assert.That((first, second), Is.EqualTo((0, 1)));
    }

    [Test]
    public void AHintMatchesAnEndpointByAddressNotOnlyBySpelling()
    {
        using var dialer = Dialer("[::1]:7001", "127.0.0.1:7002", "[0:0::1]:7003");
        var round = new EndpointRound(dialer);
        round.TryNext(out _);
        Assert.That(round.Follow("full; try n at [::1]:7003"), Is.EqualTo("[0:0::1]:7003"));
        Assert.That(round.TryNext(out int next), Is.True);
        Assert.That(next, Is.EqualTo(2));
    }
}
