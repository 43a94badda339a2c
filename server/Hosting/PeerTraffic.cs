using GeoRelay.Codec.Frames;
using GeoRelay.Engines;

namespace GeoRelay.Server.Hosting;

/// <summary>Bytes to and from each peer over the host's lifetime, for metrics and status pages.</summary>
public readonly record struct PeerTraffic(string Peer, NodeKind Kind, PortKind Port, int Connections, long BytesSent, long BytesReceived);
