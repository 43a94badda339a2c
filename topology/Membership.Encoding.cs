using System.Buffers.Binary;
using System.Text;
using GeoRelay.Topology.Internal;

namespace GeoRelay.Topology;

// Layout (integers big-endian; str = u8 byte length + UTF-8; list = u32 count + that many str):
//   "GRMB" | u16 version (1) | str preferred leader | u8 has candidates (0/1) [list candidates]
//   | u32 datacenter count, each: str name, list relays, list members
//   | u32 node count, each (sorted by id): str id, str dc, u8 flags, endpoint*, list feed-from, [i32 max-learners]
//   | u32 CRC-32C of everything before it
// flags: bit 0 voter, bits 1-5 publish, listen, learners, admin, web present, bit 6 max-learners present.
// endpoint: str host (canonical, as NodeEndpoint keeps it) + u16 port.
public sealed partial class Membership
{
    /// <summary>Format version written by <see cref="Encode"/>.</summary>
    public const ushort FormatVersion = 1;
    /// <summary>Longest encoding <see cref="Decode"/> accepts: 1 MiB.</summary>
    public const int MaxEncodedBytes = 1 << 20;
    /// <summary>Most nodes (and entries of any list) a membership may hold.</summary>
    public const int MaxNodes = 10_000;
    /// <summary>Longest node id, datacenter name or host in UTF-8 bytes.</summary>
    public const int MaxNameBytes = 255;

    private static ReadOnlySpan<byte> Magic => "GRMB"u8;
    private const int FlagVoter = 1, FlagMaxLearners = 1 << 6, FirstEndpointFlag = 1 << 1, KnownFlags = (1 << 7) - 1;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The binary form for log entries and files: deterministic, so equal memberships give identical bytes.</summary>
    /// <exception cref="InvalidOperationException">A name is longer than <see cref="MaxNameBytes"/>, there are more than
    /// <see cref="MaxNodes"/> nodes or the result would exceed <see cref="MaxEncodedBytes"/>: <see cref="Decode"/> would refuse it.</exception>
    public byte[] Encode() => (byte[])Encoding().Clone();

    private byte[] Encoding()
    {
        if (_encoding is not null)
        {
            return _encoding;
        }
        var writer = new EncodingWriter();
        writer.Bytes(Magic);
        writer.U16(FormatVersion);
        writer.Str(PreferredLeader);
        writer.U8(LeaderCandidates is null ? (byte)0 : (byte)1);
        if (LeaderCandidates is not null) writer.List(LeaderCandidates);
        writer.Count(Datacenters.Count);
        foreach (var dc in Datacenters)
        {
            writer.Str(dc.Name);
            writer.List(dc.Relays);
            writer.List(dc.Members);
        }
        var ids = _nodes.Keys.ToArray();
        Array.Sort(ids, StringComparer.Ordinal);
        writer.Count(ids.Length);
        foreach (string id in ids)
        {
            var node = _nodes[id];
            writer.Str(node.Id);
            writer.Str(node.Datacenter);
            int flags = (node.Voter ? FlagVoter : 0) | (node.MaxLearners is null ? 0 : FlagMaxLearners);
            int bit = FirstEndpointFlag;
            foreach (var (_, endpoint) in node.Endpoints())
            {
                flags |= endpoint is null ? 0 : bit;
                bit <<= 1;
            }
            writer.U8((byte)flags);
            foreach (var (_, endpoint) in node.Endpoints())
            {
                if (endpoint is { } e)
                {
                    writer.Str(e.Host);
                    writer.U16(checked((ushort)e.Port));
                }
            }
            writer.List(node.FeedFrom);
            if (node.MaxLearners is { } max) writer.I32(max);
        }
        var body = writer.ToArray(extra: 4);
        BinaryPrimitives.WriteUInt32BigEndian(body.AsSpan(body.Length - 4), Crc32C.Compute(body.AsSpan(0, body.Length - 4)));
        if (body.Length > MaxEncodedBytes)
        {
            throw new InvalidOperationException($"the membership encodes to {body.Length} bytes, more than the {MaxEncodedBytes} a decoder accepts");
        }
        return _encoding = body;
    }

    /// <summary>Reads what <see cref="Encode"/> wrote. Checks sizes before allocating, so untrusted bytes are safe to give it.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a membership; the message says what is wrong and at which offset.</exception>
    public static Membership Decode(ReadOnlySpan<byte> data)
    {
        const int minimum = 4 + 2 + 1 + 1 + 4 + 4 + 4;
        if (data.Length > MaxEncodedBytes)
        {
            throw new InvalidDataException($"membership of {data.Length} bytes is larger than the maximum of {MaxEncodedBytes}");
        }
        if (data.Length < minimum)
        {
            throw new InvalidDataException($"membership of {data.Length} bytes is shorter than the smallest possible ({minimum})");
        }
        if (!data[..4].SequenceEqual(Magic))
        {
            throw new InvalidDataException($"not a membership at offset 0: expected the magic 'GRMB', found {Convert.ToHexString(data[..4])}");
        }
        ushort version = BinaryPrimitives.ReadUInt16BigEndian(data[4..]);
        if (version != FormatVersion)
        {
            throw new InvalidDataException($"membership format version {version} at offset 4 is not supported (this build reads {FormatVersion})");
        }
        int crcAt = data.Length - 4;
        uint expected = BinaryPrimitives.ReadUInt32BigEndian(data[crcAt..]), actual = Crc32C.Compute(data[..crcAt]);
        if (expected != actual)
        {
            throw new InvalidDataException($"membership checksum at offset {crcAt} is {expected:x8} but the bytes before it sum to {actual:x8}: the membership is damaged");
        }

        var reader = new EncodingReader(data[..crcAt], 6);
        string leader = reader.Str("preferred leader");
        int at = reader.Offset;
        IReadOnlyList<string>? candidates = reader.U8("leader-candidates flag") switch
        {
            0 => null,
            1 => reader.List("leader-candidates"),
            var other => throw new InvalidDataException($"leader-candidates flag at offset {at} is {other}; expected 0 or 1"),
        };
        int dcCount = reader.Count("datacenter count", minimumBytesEach: 1 + 4 + 4);
        var datacenters = new List<MembershipDatacenter>(dcCount);
        for (int i = 0; i < dcCount; i++)
        {
            string name = reader.Str("datacenter name");
            datacenters.Add(new MembershipDatacenter(name, reader.List($"relays of datacenter '{name}'"), reader.List($"members of datacenter '{name}'")));
        }
        int nodeCount = reader.Count("node count", minimumBytesEach: 1 + 1 + 1 + 4);
        var nodes = new List<MembershipNode>(nodeCount);
        var ids = new HashSet<string>(nodeCount, StringComparer.Ordinal);
        string? previous = null;
        for (int i = 0; i < nodeCount; i++)
        {
            at = reader.Offset;
            string id = reader.Str("node id");
            if (previous is not null && string.CompareOrdinal(previous, id) >= 0)
            {
                throw new InvalidDataException($"node '{id}' at offset {at} is out of order or repeated (after '{previous}'); an encoding lists nodes once, sorted by id");
            }
            previous = id;
            string dc = reader.Str($"node '{id}' dc");
            at = reader.Offset;
            int flags = reader.U8($"node '{id}' flags");
            if ((flags & ~KnownFlags) != 0)
            {
                throw new InvalidDataException($"node '{id}' flags at offset {at} are {flags:x2}; unknown bits {flags & ~KnownFlags:x2}");
            }
            var endpoints = new NodeEndpoint?[5];
            string[] keys = ["publish", "listen", "learners", "admin", "web"];
            for (int e = 0; e < endpoints.Length; e++)
            {
                if ((flags & (FirstEndpointFlag << e)) != 0)
                {
                    endpoints[e] = reader.Endpoint($"node '{id}' {keys[e]}");
                }
            }
            var feedFrom = reader.List($"node '{id}' feed-from");
            int? maxLearners = null;
            if ((flags & FlagMaxLearners) != 0)
            {
                at = reader.Offset;
                int max = reader.I32($"node '{id}' max-learners");
                maxLearners = max >= 1 ? max : throw new InvalidDataException($"node '{id}' max-learners at offset {at} is {max}; it must be at least 1");
            }
            ids.Add(id);
            nodes.Add(new MembershipNode
            {
                Id = id, Datacenter = dc, Voter = (flags & FlagVoter) != 0,
                Publish = endpoints[0], Listen = endpoints[1], Learners = endpoints[2], Admin = endpoints[3], Web = endpoints[4],
                FeedFrom = feedFrom, MaxLearners = maxLearners,
            });
        }
        if (reader.Offset != crcAt)
        {
            throw new InvalidDataException($"{crcAt - reader.Offset} unexpected bytes at offset {reader.Offset}, after the last node and before the checksum");
        }
        return new Membership(leader, candidates, datacenters, nodes);
    }

    private sealed class EncodingWriter
    {
        private byte[] _buffer = new byte[256];
        private int _length;

        public void Bytes(ReadOnlySpan<byte> bytes)
        {
            Ensure(bytes.Length);
            bytes.CopyTo(_buffer.AsSpan(_length));
            _length += bytes.Length;
        }

        public void U8(byte value) => Bytes([value]);

        public void U16(ushort value)
        {
            Span<byte> bytes = stackalloc byte[2];
            BinaryPrimitives.WriteUInt16BigEndian(bytes, value);
            Bytes(bytes);
        }

        public void I32(int value)
        {
            Span<byte> bytes = stackalloc byte[4];
            BinaryPrimitives.WriteInt32BigEndian(bytes, value);
            Bytes(bytes);
        }

        public void Count(int count)
        {
            if (count > MaxNodes)
            {
                throw new InvalidOperationException($"a membership holds at most {MaxNodes} nodes and list entries; this one has {count}");
            }
            I32(count);
        }

        public void Str(string text)
        {
            int bytes = StrictUtf8.GetByteCount(text);
            if (bytes is 0 or > MaxNameBytes)
            {
                throw new InvalidOperationException($"'{text}' is {bytes} UTF-8 bytes; names and hosts in a membership are 1 to {MaxNameBytes}");
            }
            U8((byte)bytes);
            Ensure(bytes);
            _length += StrictUtf8.GetBytes(text, _buffer.AsSpan(_length));
        }

        public void List(IReadOnlyList<string> items)
        {
            Count(items.Count);
            foreach (string item in items) Str(item);
        }

        public byte[] ToArray(int extra)
        {
            var result = new byte[_length + extra];
            _buffer.AsSpan(0, _length).CopyTo(result);
            return result;
        }

        private void Ensure(int more)
        {
            if (_length + more > _buffer.Length)
            {
                Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + more));
            }
        }
    }

    private ref struct EncodingReader(ReadOnlySpan<byte> data, int offset)
    {
        private readonly ReadOnlySpan<byte> _data = data;

        public int Offset { get; private set; } = offset;

        private readonly int Remaining => _data.Length - Offset;

        public byte U8(string what)
        {
            Need(1, what);
            return _data[Offset++];
        }

        public ushort U16(string what)
        {
            Need(2, what);
            ushort value = BinaryPrimitives.ReadUInt16BigEndian(_data[Offset..]);
            Offset += 2;
            return value;
        }

        public int I32(string what)
        {
            Need(4, what);
            int value = BinaryPrimitives.ReadInt32BigEndian(_data[Offset..]);
            Offset += 4;
            return value;
        }

        /// <summary>A count, refused before anything is allocated for it when it exceeds <see cref="MaxNodes"/> or the bytes left.</summary>
        public int Count(string what, int minimumBytesEach)
        {
            int at = Offset;
            int count = I32(what);
            if (count < 0 || count > MaxNodes)
            {
                throw new InvalidDataException($"{what} at offset {at} is {(uint)count}; at most {MaxNodes}");
            }
            if ((long)count * minimumBytesEach > Remaining)
            {
                throw new InvalidDataException($"{what} at offset {at} is {count}, but only {Remaining} bytes follow (at least {minimumBytesEach} each)");
            }
            return count;
        }

        public string Str(string what)
        {
            int at = Offset;
            int length = U8(what + " length");
            if (length == 0)
            {
                throw new InvalidDataException($"{what} at offset {at} is empty");
            }
            Need(length, what);
            try
            {
                string text = StrictUtf8.GetString(_data.Slice(Offset, length));
                Offset += length;
                return text;
            }
            catch (DecoderFallbackException)
            {
                throw new InvalidDataException($"{what} at offset {at + 1} is not valid UTF-8");
            }
        }

        public string[] List(string what)
        {
            int count = Count(what + " count", minimumBytesEach: 2);
            var items = new string[count];
            for (int i = 0; i < count; i++)
            {
                items[i] = Str($"entry {i} of {what}");
            }
            return items;
        }

        public NodeEndpoint Endpoint(string what)
        {
            int at = Offset;
            string host = Str(what + " host");
            int port = U16(what + " port");
            var endpoint = new NodeEndpoint(host, port);
            // Only canonical addresses: two spellings of one address must not make two encodings.
            if (!NodeEndpoint.TryParse(endpoint.ToString(), out var parsed, out string? error) || parsed != endpoint)
            {
                throw new InvalidDataException($"{what} at offset {at} is not a canonical host:port address ({error ?? endpoint.ToString()})");
            }
            return endpoint;
        }

        private readonly void Need(int bytes, string what)
        {
            if (bytes > Remaining)
            {
                throw new InvalidDataException($"{what} at offset {Offset} needs {bytes} bytes but only {Remaining} are left");
            }
        }
    }
}
