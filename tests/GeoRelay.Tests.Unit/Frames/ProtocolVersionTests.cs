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
    [TestCase(2, 2, 2)]
    public void AdjacentVersionsAgreeOnTheLower(int listener, int dialer, int agreed)
    {
        Assert.That(ProtocolVersion.Negotiate(Speaking((ushort)listener, "a"), Speaking((ushort)dialer, "b")), Is.EqualTo(agreed));
    }

    [Test]
    public void ANodePinnedTo2RefusesAVersion3HelloAndTakesItsFallback()
    {
        var ours = Speaking(2, "a");
        var theirs = Speaking(3, "b");
        var e = Assert.Throws<CodecException>(() => ProtocolVersion.Negotiate(ours, theirs));
        Assert.That(e!.Reason, Is.EqualTo(CodecError.DefinitionsMismatch));
        Assert.That(e.Detail, Does.Contain("protocol 2 frame definitions differ").And.Contain($"{ProtocolVersion.DefinitionsHash:x16}"));
        var fallback = Handshake.FallbackHello(theirs, new HandshakeRefusedException(e.Reason, e.Detail));
        Assert.That(fallback, Is.Not.Null);
        Assert.That(ProtocolVersion.Negotiate(ours, fallback!.Value), Is.EqualTo(2));
    }

    /// <summary>Negotiate of a06841e (protocol 2 only), as it was but for naming its constants Max (2) and DefinitionsHash.</summary>
    private static ushort Version2BuildNegotiate(in Hello local, in Hello remote)
    {
        const ushort Max = 2;
        ulong definitionsHash = ProtocolVersion.DefinitionsHashFor(2)!.Value;
        Assert.That(local.DefinitionsHash, Is.EqualTo(definitionsHash), "a version-2 build's Hello carries its hash");
        ushort low = Math.Max(local.MinVersion, remote.MinVersion);
        ushort high = Math.Min(local.MaxVersion, remote.MaxVersion);
        if (low > high)
            throw new CodecException(CodecError.VersionMismatch,
                $"no common protocol version: {local.NodeId} speaks {local.MinVersion}..{local.MaxVersion}, {remote.NodeId} speaks {remote.MinVersion}..{remote.MaxVersion}");
        if (high == local.MaxVersion && high == Max && local.DefinitionsHash != remote.DefinitionsHash)
            throw new CodecException(CodecError.DefinitionsMismatch,
                $"protocol {high} frame definitions differ: {local.NodeId} has {local.DefinitionsHash:x16}, {remote.NodeId} has {remote.DefinitionsHash:x16}");
        return high;
    }

    private static string Outcome(Func<ushort> negotiate)
    {
        try
        {
            return $"version {negotiate()}";
        }
        catch (CodecException e)
        {
            return e.Message;
        }
    }

    [Test]
    public void ANodePinnedTo2NegotiatesExactlyAsAVersion2Build()
    {
        var ours = Speaking(2, "a");
        ulong[] hashes = [ProtocolVersion.DefinitionsHashFor(2)!.Value, ProtocolVersion.DefinitionsHash, 12345];
        int refused = 0;
        for (ushort min = 1; min <= 4; min++)
            for (ushort max = min; max <= 4; max++)
                foreach (var hash in hashes)
                {
                    var theirs = Speaking(2, "b") with { MinVersion = min, MaxVersion = max, DefinitionsHash = hash };
                    string expected = Outcome(() => Version2BuildNegotiate(ours, theirs));
                    Assert.That(Outcome(() => ProtocolVersion.Negotiate(ours, theirs)), Is.EqualTo(expected), $"a dialer of {min}..{max} with hash {hash:x16}");
                    if (expected.StartsWith(nameof(CodecError.DefinitionsMismatch), StringComparison.Ordinal)) refused++;
                }
        Assert.That(refused, Is.GreaterThan(0), "the grid covers the refusals a version-3 dialer meets");
    }

    [Test]
    public void AVersion3DialerRefusedForItsDefinitionsFallsBackTo2WithVersion2sHash()
    {
        var ours = Speaking(3, "a") with { Kind = NodeKind.Learner, Auth = new byte[] { 1, 2 } };
        var fallback = Handshake.FallbackHello(ours, new HandshakeRefusedException(CodecError.DefinitionsMismatch, "protocol 2 frame definitions differ"));
        Assert.That(fallback, Is.EqualTo(ours with { MaxVersion = 2, DefinitionsHash = ProtocolVersion.DefinitionsHashFor(2)!.Value }));
        Assert.That(Handshake.FallbackHello(fallback!.Value, new HandshakeRefusedException(CodecError.DefinitionsMismatch, "again")), Is.Null,
            "a refused fallback is final");
    }

    [TestCase(CodecError.VersionMismatch)]
    [TestCase(CodecError.Unauthorized)]
    [TestCase(CodecError.Shutdown)]
    [TestCase(CodecError.LimitExceeded)]
    public void NoOtherRefusalFallsBack(CodecError reason)
    {
        Assert.That(Handshake.FallbackHello(Speaking(3, "a"), new HandshakeRefusedException(reason, "no")), Is.Null);
    }

    [Test]
    public void NoFallbackForOurOwnChecksOrFromAHelloThatCannotGoLower()
    {
        var refusal = new HandshakeRefusedException(CodecError.DefinitionsMismatch, "no");
        Assert.That(Handshake.FallbackHello(Speaking(3, "a"), new CodecException(CodecError.DefinitionsMismatch, "ours")), Is.Null,
            "only the peer's refusal");
        Assert.That(Handshake.FallbackHello(Speaking(2, "a"), refusal), Is.Null);
        Assert.That(Handshake.FallbackHello(Speaking(3, "a") with { MinVersion = 3 }, refusal), Is.Null);
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
    public async Task AVersion3DialerRefusedByAListenerPinnedTo2AgreesOn2WithItsFallback()
    {
        var dialer = Speaking(3, "dialer");
        HandshakeRefusedException refused;
        await using (var first = await Pair.ConnectAsync())
        {
            var accepting = Handshake.AcceptAsync(first.Listener, Speaking(2, "listener"), _ => null, Patience, CancellationToken.None);
            refused = Assert.ThrowsAsync<HandshakeRefusedException>(() => Handshake.DialAsync(first.Dialer, dialer, Patience, CancellationToken.None))!;
            Assert.That(refused.Reason, Is.EqualTo(CodecError.DefinitionsMismatch));
            Assert.That(refused.Detail, Does.Contain("protocol 2 frame definitions differ"));
            Assert.That(Assert.ThrowsAsync<CodecException>(async () => await accepting.WaitAsync(Patience))!.Reason, Is.EqualTo(CodecError.DefinitionsMismatch));
        }

        var fallback = Handshake.FallbackHello(dialer, refused);
        Assert.That(fallback, Is.Not.Null);
        await using var second = await Pair.ConnectAsync();
        var acceptingAgain = Handshake.AcceptAsync(second.Listener, Speaking(2, "listener"), _ => null, Patience, CancellationToken.None);
        var welcome = await Handshake.DialAsync(second.Dialer, fallback!.Value, Patience, CancellationToken.None);
        var (hello, version) = await acceptingAgain.WaitAsync(Patience);
        Assert.That((welcome.Version, version, hello.MaxVersion), Is.EqualTo((2, 2, 2)));
        Assert.That((second.Dialer.Version, second.Listener.Version), Is.EqualTo((2, 2)));
    }

    /// <summary>Answers every connection with a handshake as <paramref name="local"/>; records them in order, each before it is answered.</summary>
    private sealed class HandshakeListener : IAsyncDisposable
    {
        private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly List<FramedConnection> _connections = [];
        private readonly List<Task<(Hello Hello, ushort Version)>> _handshakes = [];
        private readonly Task _accepting;

        public HandshakeListener(Hello local, Func<Hello, CodecException?> check)
        {
            _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _socket.Listen(4);
            _accepting = AcceptAsync(local, check);
        }

        public string EndPoint => _socket.LocalEndPoint!.ToString()!;

        /// <summary>Complete once a client's dial returned: a redial is accepted before the dial can end.</summary>
        public List<Task<(Hello Hello, ushort Version)>> Handshakes
        {
            get { lock (_handshakes) return [.. _handshakes]; }
        }

        private async Task AcceptAsync(Hello local, Func<Hello, CodecException?> check)
        {
            while (true)
            {
                Socket accepted;
                try
                {
                    accepted = await _socket.AcceptAsync();
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    return;
                }
                var connection = new FramedConnection(accepted, ConnectionOptions.Default);
                connection.StartWriting();
                var handshake = new TaskCompletionSource<(Hello, ushort)>(TaskCreationOptions.RunContinuationsAsynchronously);
                lock (_handshakes)
                {
                    _connections.Add(connection);
                    _handshakes.Add(handshake.Task);
                }
                _ = AnswerAsync(connection, local, check, handshake);
            }
        }

        private static async Task AnswerAsync(FramedConnection connection, Hello local, Func<Hello, CodecException?> check, TaskCompletionSource<(Hello, ushort)> handshake)
        {
            try
            {
                handshake.SetResult(await Handshake.AcceptAsync(connection, local, check, Patience, CancellationToken.None));
            }
            catch (Exception e)
            {
                handshake.SetException(e);
            }
        }

        public async ValueTask DisposeAsync()
        {
            _socket.Dispose();
            await _accepting;
            foreach (var connection in _connections) await connection.DisposeAsync();
            foreach (var handshake in _handshakes)
                if (handshake.IsFaulted) _ = handshake.Exception;
        }
    }

    private static GeoRelay.LearnerClient.Internal.EndpointDialer ClientDialer(string endPoint) =>
        new(GeoRelay.LearnerClient.LearnerClientOptions.Default with { Endpoints = [endPoint], NodeId = "sdk", Cluster = "c" }, [endPoint],
            NodeKind.Learner, ConnectionOptions.Default, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

    [Test]
    public async Task AnSdkClientRedialsANodePinnedTo2OnceWithProtocol2()
    {
        Assume.That(ProtocolVersion.LocalMax, Is.EqualTo(ProtocolVersion.Max), "the client offers 3");
        await using var listener = new HandshakeListener(Speaking(2, "listener"), _ => null);
        using var dialer = ClientDialer(listener.EndPoint);
        await using var connection = await dialer.DialAsync(0, CancellationToken.None).WaitAsync(Patience);
        Assert.That(connection.Version, Is.EqualTo(2));
        var handshakes = listener.Handshakes;
        Assert.That(handshakes, Has.Count.EqualTo(2), "refused once, then redialed once");
        Assert.That(Assert.ThrowsAsync<CodecException>(async () => await handshakes[0].WaitAsync(Patience))!.Reason, Is.EqualTo(CodecError.DefinitionsMismatch));
        var (hello, version) = await handshakes[1].WaitAsync(Patience);
        Assert.That((hello.MinVersion, hello.MaxVersion, hello.DefinitionsHash, version),
            Is.EqualTo((ProtocolVersion.Min, (ushort)2, ProtocolVersion.DefinitionsHashFor(2)!.Value, (ushort)2)));
    }

    [TestCase(CodecError.Unauthorized)]
    [TestCase(CodecError.LimitExceeded)]
    public async Task AnSdkClientRefusedForAnotherReasonDoesNotRedial(CodecError reason)
    {
        await using var listener = new HandshakeListener(Speaking(3, "listener"), _ => new CodecException(reason, "not you"));
        using var dialer = ClientDialer(listener.EndPoint);
        var refused = Assert.ThrowsAsync<HandshakeRefusedException>(async () => await dialer.DialAsync(0, CancellationToken.None).WaitAsync(Patience));
        Assert.That(refused!.Reason, Is.EqualTo(reason));
        Assert.That(listener.Handshakes, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task AnSdkClientWhoseFallbackIsRefusedTooGivesUpAfterOneRedial()
    {
        Assume.That(ProtocolVersion.LocalMax, Is.EqualTo(ProtocolVersion.Max), "the client offers 3");
        // A build whose version-2 layouts differ from ours refuses the fallback Hello as well.
        var listener2 = Speaking(2, "listener") with { DefinitionsHash = ProtocolVersion.DefinitionsHashFor(2)!.Value ^ 1 };
        await using var listener = new HandshakeListener(listener2, _ => null);
        using var dialer = ClientDialer(listener.EndPoint);
        var refused = Assert.ThrowsAsync<HandshakeRefusedException>(async () => await dialer.DialAsync(0, CancellationToken.None).WaitAsync(Patience));
        Assert.That(refused!.Reason, Is.EqualTo(CodecError.DefinitionsMismatch));
        Assert.That(listener.Handshakes, Has.Count.EqualTo(2));
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
        // A v3 node's Hello, or its fallback Hello for a listener pinned to 2.
        var dialer = Speaking(3, "dialer");
        if (listenerMax == 2) dialer = Handshake.FallbackHello(dialer, new HandshakeRefusedException(CodecError.DefinitionsMismatch, "v2"))!.Value;
        await Handshake.DialAsync(pair.Dialer, dialer, Patience, CancellationToken.None);
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
