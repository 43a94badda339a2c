namespace GeoRelay.Topology;

/// <summary>What a <see cref="MembershipStep"/> asks of the driver.</summary>
public enum MembershipStepKind
{
    /// <summary>Commit <see cref="MembershipStep.Next"/>.</summary>
    Change,
    /// <summary>Wait until <see cref="MembershipStep.Node"/> has caught up, then commit <see cref="MembershipStep.Next"/>, which makes it a voter.</summary>
    Promote,
    /// <summary>Hand leadership to <see cref="MembershipStep.Node"/> before going on; <see cref="MembershipStep.Next"/> is null.</summary>
    TransferLeadership,
}

/// <summary>One step of a <see cref="MembershipPlan"/>: a human line, and the full membership to commit (none for a transfer).</summary>
public sealed record MembershipStep(MembershipStepKind Kind, string Description, Membership? Next, string? Node)
{
    public override string ToString() => Description;
}
