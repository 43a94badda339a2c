using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Topology;
using GeoRelay.Engines;

namespace GeoRelay.Relay;

/// <summary>The handshake checks relays and members share; each says only who may feed it.</summary>
internal static class PeerAdmission
{
    public static CodecException? Check(in Hello hello, PortKind port, TopologyConfig topology, ulong topologyHash,
        string self, bool mayFeed, ulong highestEpoch)
    {
        if (port == PortKind.Learner)
            return hello.Kind is NodeKind.Learner or NodeKind.Tool ? null
                : new CodecException(CodecError.Protocol, $"the learner port takes learners, not {hello.Kind}");
        if (hello.Cluster != topology.Cluster)
            return new CodecException(CodecError.UnknownNode, $"cluster '{hello.Cluster}' is not '{topology.Cluster}'");
        if (!mayFeed)
            return new CodecException(CodecError.UnknownNode, $"{hello.Kind} {hello.NodeId} may not feed {self}");
        // On protocol 3 the upstream sends its membership first, and it is adopted: files may differ.
        if (hello.TopologyHash != topologyHash && !ProtocolVersion.CarriesConfiguration(hello))
            return new CodecException(CodecError.Protocol, $"topology differs: {hello.NodeId} has {hello.TopologyHash:x16}, {self} has {topologyHash:x16}");
        if (hello.Kind == NodeKind.Leader && hello.Epoch < highestEpoch)
            return new CodecException(CodecError.StaleEpoch, $"epoch {hello.Epoch} is below {highestEpoch}, the highest {self} has seen");
        return null;
    }
}
