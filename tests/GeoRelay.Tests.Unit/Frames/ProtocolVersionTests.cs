using System.Buffers;
using System.Net;
using System.Net.Sockets;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Transport;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Frames;

/// <summary>Protocol 3 beside protocol 2: negotiation, the definitions check per version, and the GEORELAY_PROTOCOL_MAX pin.</summary>
[TestFixture]
public sealed class ProtocolVersionTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    /// <summary>The Hello of a build of <paramref name="max"/> (what GEORELAY_PROTOCOL_MAX=<paramref name="max"/> makes a process send).</summary>
    private static Hello Speaking(ushort max, string node) =>
        Hello.ForThisBuild(node, NodeKind.Relay, 0, "c", 7) with { MaxVersion = max, DefinitionsHash = ProtocolVersion.DefinitionsHashFor(max)!.Value };

    [Test]
    public void Version2DefinitionsHashAsVersion2BuildsDo()
    {
        // The hash a build of a06841e (protocol 2 only) sends in its Hello: version-2 peers compare it with ours.
        Assert.That(ProtocolVersion.DefinitionsHashFor(2), Is.EqualTo(0x6c14a1b9379a896bUL));
        Assert.That(ProtocolVersion.Fnv1a64(ProtocolVersion.DefinitionsV2), Is.EqualTo(0x6c14a1b9379a896bUL));
    }

    [Test]
    public void Version3DefinitionsAreVersion2sPlusTheConfigurationFrame()
    {
        Assert.That(ProtocolVersion.Definitions, Does.StartWith(ProtocolVersion.DefinitionsV2 + ";Configuration:"));
        Assert.That(ProtocolVersion.DefinitionsHashFor(3), Is.EqualTo(ProtocolVersion.DefinitionsHash));
        Assert.That(ProtocolVersion.DefinitionsHashFor(3), Is.Not.EqualTo(ProtocolVersion.DefinitionsHashFor(2)));
        Assert.That(ProtocolVersion.DefinitionsHashFor(1), Is.Null);
        Assert.That(ProtocolVersion.DefinitionsHashFor(4), Is.Null);
        Assert.That((ProtocolVersion.Min, ProtocolVersion.Max), Is.EqualTo((2, 3)));
    }

    [Test]
    public void TheNewestFrameTypeOfEachVersion()
    {
        Assert.That(ProtocolVersion.MaxFrameType(2), Is.EqualTo(FrameType.SnapshotChunk));
        Assert.That(ProtocolVersion.MaxFrameType(3), Is.EqualTo(FrameType.Configuration));
        Assert.That(FrameHeader.MaxType, Is.EqualTo(ProtocolVersion.MaxFrameType(ProtocolVersion.Max)), "a new frame type needs a version");
    }

    [TestCase(3, 3, 3)]
    [TestCase(3, 2, 2)]
    [TestCase(2, 3, 2)]
    [TestCase(2, 2, 2)]
    public void AdjacentVersionsAgreeOnTheLower(int local, int remote, int agreed)
    {
        var ours = Speaking((ushort)local, "a");
        var theirs = Speaking((ushort)remote, "b");
        Assert.That(ProtocolVersion.Negotiate(ours, theirs), Is.EqualTo(agreed));
        Assert.That(ProtocolVersion.Negotiate(theirs, ours), Is.EqualTo(agreed), "either side may listen");
    }

    [Test]
    public void MismatchedVersion3DefinitionsAreRefusedByBothSides()
    {
        var ours = Speaking(3, "a");
        var theirs = ours with { NodeId = "b", DefinitionsHash = ours.DefinitionsHash ^ 1 };
        var e = Assert.Throws<CodecException>(() => ProtocolVersion.Negotiate(ours, theirs));
        Assert.That(e!.Reason, Is.EqualTo(CodecError.DefinitionsMismatch));
        Assert.That(e.Message, Does.Contain("protocol 3 frame definitions differ").And.Contain($"{theirs.DefinitionsHash:x16}"));
        Assert.That(Assert.Throws<CodecException>(() => ProtocolVersion.Negotiate(theirs, ours))!.Reason, Is.EqualTo(CodecError.DefinitionsMismatch));
    }

    [Test]
    public void AVersion2PeerIsCheckedAgainstOurVersion2Definitions()
    {
        var ours = Speaking(3, "a");
        var theirs = Speaking(2, "b") with { DefinitionsHash = ProtocolVersion.DefinitionsHashFor(2)!.Value ^ 1 };
        var e = Assert.Throws<CodecException>(() => ProtocolVersion.Negotiate(ours, theirs));
        Assert.That(e!.Reason, Is.EqualTo(CodecError.DefinitionsMismatch));
        Assert.That(e.Message, Does.Contain("protocol 2 frame definitions differ"));
    }

    [Test]
    public void AVersion2NodeLeavesAVersion3PeersHashToThatPeer()
    {
        // Its hash describes version 3, which we do not speak; the v3 side checks our version-2 hash.
        var ours = Speaking(2, "a");
        var theirs = Speaking(3, "b") with { DefinitionsHash = 12345 };
        Assert.That(ProtocolVersion.Negotiate(ours, theirs), Is.EqualTo(2));
    }

    [Test]
    public void NoCommonVersionIsRefusedNamingBothRanges()
    {
        var ours = Speaking(3, "a") with { MinVersion = 3 };
        var theirs = Speaking(2, "b");
        var e = Assert.Throws<CodecException>(() => ProtocolVersion.Negotiate(ours, theirs));
        Assert.That(e!.Reason, Is.EqualTo(CodecError.VersionMismatch));
        Assert.That(e.Message, Does.Contain("a speaks 3..3").And.Contain("b speaks 2..2"));
    }

    [TestCase(null, 3)]
    [TestCase("", 3)]
    [TestCase("2", 2)]
    [TestCase("3", 3)]
    public void TheMaxVariableTakesVersion2Or3(string? value, int max)
    {
        Assert.That(ProtocolVersion.ParseMax(value), Is.EqualTo(((ushort)max, (string?)null)));
    }

    [TestCase("1")]
    [TestCase("4")]
    [TestCase(" 2")]
    [TestCase("02")]
    [TestCase("two")]
    public void AnyOtherValueOfTheMaxVariableIsAnErrorNamingIt(string value)
    {
        var (_, problem) = ProtocolVersion.ParseMax(value);
        Assert.That(problem, Does.StartWith($"GEORELAY_PROTOCOL_MAX is '{value}'").And.Contain("must be 2 or 3"));
    }

    [Test]
    public void ThisBuildsHelloOffersTheLocalMaxWithItsDefinitions()
    {
        // LocalMax comes from this process's environment (unset in CI: 3).
        var expected = ProtocolVersion.ParseMax(Environment.GetEnvironmentVariable(ProtocolVersion.MaxVariable)).Max;
        Assert.That(ProtocolVersion.LocalMax, Is.EqualTo(expected));
        var hello = Hello.ForThisBuild("a", NodeKind.Member, 0, "c", 0);
        Assert.That((hello.MinVersion, hello.MaxVersion, hello.DefinitionsHash),
            Is.EqualTo((ProtocolVersion.Min, expected, ProtocolVersion.DefinitionsHashFor(expected)!.Value)));
    }

    private sealed class Pair : IAsyncDisposable
    {
        public required FramedConnection Dialer { get; init; }
        public required FramedConnection Listener { get; init; }

        public static async Task<Pair> ConnectAsync()
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            socket.Listen(1);
            var accept = socket.AcceptAsync();
            var dialer = await FramedConnection.ConnectAsync(socket.LocalEndPoint!, ConnectionOptions.Default, CancellationToken.None);
            var listener = new FramedConnection(await accept.WaitAsync(Patience), ConnectionOptions.Default);
            dialer.StartWriting();
            listener.StartWriting();
            return new Pair { Dialer = dialer, Listener = listener };
        }

        public async ValueTask DisposeAsync()
        {
            await Dialer.DisposeAsync();
            await Listener.DisposeAsync();
        }
    }

    [TestCase(3, 2)]
    [TestCase(2, 3)]
    [TestCase(3, 3)]
    public async Task TheHandshakeAgreesOnTheLowerVersionOnBothSides(int dialer, int listener)
    {
        await using var pair = await Pair.ConnectAsync();
        var accepting = Handshake.AcceptAsync(pair.Listener, Speaking((ushort)listener, "listener"), _ => null, Patience, CancellationToken.None);
        var welcome = await Handshake.DialAsync(pair.Dialer, Speaking((ushort)dialer, "dialer"), Patience, CancellationToken.None);
        var (hello, version) = await accepting.WaitAsync(Patience);
        int lower = Math.Min(dialer, listener);
        Assert.That((welcome.Version, version, hello.MaxVersion), Is.EqualTo((lower, lower, dialer)));
        Assert.That((pair.Dialer.Version, pair.Listener.Version), Is.EqualTo((lower, lower)), "both connections know the version they speak");
    }

    [Test]
    public async Task MismatchedVersion3DefinitionsAreRefusedAtTheHandshake()
    {
        await using var pair = await Pair.ConnectAsync();
        var accepting = Handshake.AcceptAsync(pair.Listener, Speaking(3, "listener"), _ => null, Patience, CancellationToken.None);
        var dialer = Speaking(3, "dialer") with { DefinitionsHash = ProtocolVersion.DefinitionsHash ^ 1 };
        var refused = Assert.ThrowsAsync<HandshakeRefusedException>(() => Handshake.DialAsync(pair.Dialer, dialer, Patience, CancellationToken.None));
        Assert.That(refused!.Reason, Is.EqualTo(CodecError.DefinitionsMismatch));
        Assert.That(refused.Detail, Does.Contain("protocol 3 frame definitions differ"));
        Assert.That(Assert.ThrowsAsync<CodecException>(async () => await accepting.WaitAsync(Patience))!.Reason, Is.EqualTo(CodecError.DefinitionsMismatch));
    }

    [TestCase(2, true)]
    [TestCase(3, false)]
    public async Task AConfigurationFrameOnAConnectionOfItsVersionOnlyIsRead(int listenerMax, bool refused)
    {
        await using var pair = await Pair.ConnectAsync();
        var accepting = Handshake.AcceptAsync(pair.Listener, Speaking((ushort)listenerMax, "listener"), _ => null, Patience, CancellationToken.None);
        await Handshake.DialAsync(pair.Dialer, Speaking(3, "dialer"), Patience, CancellationToken.None);
        await accepting.WaitAsync(Patience);

        // A v3 node that (wrongly) sends a Configuration frame where version 2 was agreed.
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        new ConfigurationFrame(1, 1, 1, new byte[] { 1 }).Write(frame.Writer);
        FrameWriter.End(frame.Writer, start, FrameType.Configuration);
        pair.Dialer.TrySend(frame);

        var received = new List<FrameType>();
        var reading = pair.Listener.ReadLoopAsync(null, f => { received.Add(f.Type); pair.Listener.Close(CodecError.None, "test done"); });
        if (refused)
        {
            var e = Assert.ThrowsAsync<CodecException>(() => reading.WaitAsync(Patience));
            Assert.That(e!.Reason, Is.EqualTo(CodecError.Protocol));
            Assert.That(e.Message, Does.Contain("Configuration frame (type 22) is not part of protocol 2"));
            Assert.That(pair.Listener.CloseReason?.Reason, Is.EqualTo(CodecError.Protocol), "the peer is told why");
            Assert.That(received, Is.Empty);
        }
        else
        {
            await reading.WaitAsync(Patience);
            Assert.That(received, Is.EqualTo(new[] { FrameType.Configuration }));
        }
    }
}
