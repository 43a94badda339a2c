using GeoRelay.Codec;
using GeoRelay.LearnerClient;

namespace GeoRelay.Cli;

/// <summary>
/// Exit codes of the client commands (<c>tail</c>, <c>state</c>, <c>publish</c>) besides 0 (done) and 2 (bad arguments), and how a
/// final refusal is reported. The refusals take sysexits.h codes, as the daemon's disk failure takes EX_IOERR.
/// </summary>
public static class ClientExitCodes
{
    /// <summary>No endpoint answered, or a publish failed.</summary>
    public const int Unreachable = 1;

    /// <summary><c>tail</c>, <c>state</c>: no endpoint still holds the index asked for (or, from a snapshot, has one to send).</summary>
    public const int SnapshotRequired = 3;

    /// <summary>EX_NOPERM: a node refused the token; every node would, so retrying with it cannot help.</summary>
    public const int TokenRefused = 77;

    /// <summary>EX_CONFIG: every endpoint refused this client's protocol version or cluster, or is not the port it needs.</summary>
    public const int RefusedEverywhere = 78;

    /// <summary>What the help of the client commands says about the refusal codes.</summary>
    public const string RefusalsHelp = "77 a node refused the token, 78 every endpoint refused this client (protocol, cluster or port)";

    /// <summary>Prints the refusal as <c>error: ENDPOINT refused the token: REASON</c> and returns the exit code for it.</summary>
    public static int Report(ClientRefusedException refused, TextWriter error)
    {
        error.WriteLine("error: " + refused.Message);
        return refused.Code == CodecError.Unauthorized ? TokenRefused : RefusedEverywhere;
    }

    /// <summary>
    /// How a learner command ends on <see cref="LearnerConnectException"/> (<see cref="Unreachable"/>),
    /// <see cref="SnapshotRequiredException"/> (<see cref="SnapshotRequired"/>) or <see cref="ClientRefusedException"/>
    /// (<see cref="Report"/>): says why on <paramref name="error"/> and returns the exit code.
    /// </summary>
    public static int ReportSubscriptionFailure(Exception failure, TextWriter error)
    {
        switch (failure)
        {
            case ClientRefusedException refused:
                return Report(refused, error);
            case SnapshotRequiredException:
                error.WriteLine($"snapshot required: {failure.Message}");
                return SnapshotRequired;
            default:
                error.WriteLine(failure.Message);
                return Unreachable;
        }
    }
}
