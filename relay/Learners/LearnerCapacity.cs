using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Topology;

namespace GeoRelay.Relay.Learners;

/// <summary>
/// Whether a relay or member takes one more learner: not past its <c>max-learners</c>, and not while it drains. A refusal
/// ends with the other nodes of the datacenter that serve learners, relays first, as "<c>try ID at HOST:PORT</c>": the
/// SDK dials the first of them it knows next.
/// </summary>
public static class LearnerCapacity
{
    // What an Error frame carries of a message (ErrorFrame cuts longer ones): a hint cut in half could name another port.
    private const int MaxMessageChars = ErrorFrame.MaxMessageLength / 4;

    /// <summary>The node's own <c>max-learners</c>, else <c>defaults.max-learners</c>; null when neither is set.</summary>
    public static int? MaxLearners(TopologyConfig topology, string nodeId) =>
        topology.GetNode(nodeId).MaxLearners ?? topology.Defaults.MaxLearners;

    /// <summary>
    /// Null when <paramref name="nodeId"/> takes one more learner; else the refusal: <see cref="CodecError.Shutdown"/> while
    /// <paramref name="draining"/>, <see cref="CodecError.LimitExceeded"/> when <paramref name="learners"/> (connected now,
    /// the newcomer not counted) has reached the limit.
    /// </summary>
    /// <param name="refusals">
    /// The caller's count of refusals, moved on by each one: the first node named turns with it, so learners refused
    /// together spread over the others instead of all landing on the same one.
    /// </param>
    public static CodecException? Check(TopologyConfig topology, string nodeId, int learners, bool draining, ref int refusals)
    {
        var text = new StringBuilder(MaxMessageChars);
        CodecError code;
        if (draining)
        {
            code = CodecError.Shutdown;
            text.Append(nodeId).Append(" is draining and takes no new learners");
        }
        else if (MaxLearners(topology, nodeId) is { } max && learners >= max)
        {
            code = CodecError.LimitExceeded;
            text.Append(nodeId).Append(" is full: it serves ").Append(learners).Append(" learners, the limit set by ")
                .Append(topology.GetNode(nodeId).MaxLearners is not null ? $"max-learners of node '{nodeId}'" : "defaults.max-learners");
            if (Path.GetFileName(topology.SourcePath) is { Length: > 0 } file) text.Append(" in ").Append(file);
        }
        else
        {
            return null;
        }
        AppendHint(text, topology, nodeId, refusals++);
        return new CodecException(code, text.ToString());
    }

    /// <summary>"; try A at HOST:PORT or B at HOST:PORT ...": relays, then members, each list turned by <paramref name="turn"/>; as many as fit whole.</summary>
    private static void AppendHint(StringBuilder text, TopologyConfig topology, string nodeId, int turn)
    {
        var self = topology.GetNode(nodeId);
        var dc = topology.GetDatacenter(self.Datacenter);
        var relays = ServingLearners(topology, dc.Relays, nodeId);
        var members = ServingLearners(topology, dc.Members, nodeId);
        if (relays.Count + members.Count == 0)
        {
            text.Append("; no other node of datacenter '").Append(dc.Name).Append("' serves learners");
            return;
        }
        int named = 0;
        foreach (var list in (ReadOnlySpan<List<NodeConfig>>)[relays, members])
        {
            // Non-negative however far the count has run (it may wrap).
            int start = list.Count == 0 ? 0 : (int)((uint)turn % (uint)list.Count);
            for (int i = 0; i < list.Count; i++)
            {
                var node = list[(start + i) % list.Count];
                string item = (named == 0 ? "; try " : " or ") + node.Id + " at " + node.Learners!.Value;
                if (text.Length + item.Length > MaxMessageChars) return;
                text.Append(item);
                named++;
            }
        }
    }

    private static List<NodeConfig> ServingLearners(TopologyConfig topology, IReadOnlyList<string> ids, string except)
    {
        var list = new List<NodeConfig>(ids.Count);
        foreach (string id in ids)
            if (id != except && topology.GetNode(id) is { Learners: not null } node) list.Add(node);
        return list;
    }
}
