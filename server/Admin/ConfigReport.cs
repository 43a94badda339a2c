namespace GeoRelay.Server.Admin;

/// <summary>What <c>GET /config</c> answers: the configuration (membership) a voter holds, committed and latest.</summary>
/// <param name="Leader">The voter this node knows to lead <paramref name="Term"/>; null while none is known.</param>
/// <param name="LeaderAdmin">The leader's admin endpoint (HOST:PORT) in the configuration this node acts on; null when unknown or it has none.</param>
/// <param name="CommittedIndex">The log index of the committed configuration entry; 0 for the topology file's.</param>
/// <param name="LatestIndex">The log index of the newest configuration entry, committed or not.</param>
/// <param name="Membership">The committed membership, as the topology sections <c>georelay config show</c> prints.</param>
/// <param name="Latest">The latest membership, when it is not the committed one; else null.</param>
/// <param name="Voters">The voters of the committed membership.</param>
/// <param name="NonVoters">The members of the committed membership with <c>voter: false</c>.</param>
/// <param name="Encoded">The committed membership's encoding (base64), what <c>POST /config/propose</c> takes: a client plans from it exactly.</param>
/// <param name="LatestEncoded">The latest membership's encoding, when it is not the committed one.</param>
public sealed record ConfigReport(string Node, string? Leader, string? LeaderAdmin, ulong Term, ulong CommittedIndex, ulong LatestIndex,
    string Membership, string? Latest, IReadOnlyList<string> Voters, IReadOnlyList<string> NonVoters, string Encoded, string? LatestEncoded);

/// <summary>What <c>POST /config/propose</c> takes: the whole next membership, its encoding in base64.</summary>
public sealed record ConfigProposal(string? Membership);

/// <summary>What <c>POST /config/propose</c> answers: the configuration entry's index, appended in <paramref name="Term"/>.</summary>
public sealed record ConfigProposed(ulong Index, ulong Term);

/// <summary>What <c>GET /config/progress/{node}</c> answers: where the leader sees <paramref name="Node"/>, for a promotion to wait on.</summary>
/// <param name="Durable">The highest index the node reported durable.</param>
/// <param name="Last">The leader's last index.</param>
/// <param name="Commit">The leader's commit index.</param>
public sealed record ConfigProgress(string Node, bool Reachable, ulong Durable, ulong Last, ulong Commit);
