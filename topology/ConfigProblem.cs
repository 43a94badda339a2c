using System.Text;

namespace GeoRelay.Topology;

/// <summary>
/// One thing wrong with a topology file. <see cref="Line"/> and <see cref="Column"/> are 1-based;
/// both are 0 for problems with the file as a whole (it cannot be read).
/// </summary>
public sealed record ConfigProblem(string File, int Line, int Column, string Message)
{
    public override string ToString() =>
        Line > 0 ? $"{File}:{Line}:{Column}: {Message}" : $"{File}: {Message}";
}

/// <summary>The outcome of loading a topology: a config, or every problem found.</summary>
public sealed class TopologyLoadResult
{
    internal TopologyLoadResult(TopologyConfig? config, IReadOnlyList<ConfigProblem> problems,
        IReadOnlyList<ConfigProblem>? startProblems = null, IReadOnlyList<ConfigProblem>? warnings = null)
    {
        Config = config;
        Problems = problems;
        StartProblems = startProblems ?? [];
        Warnings = warnings ?? [];
    }

    [System.Diagnostics.CodeAnalysis.MemberNotNullWhen(true, nameof(Config))]
    public bool Success => Config is not null;

    public TopologyConfig? Config { get; }

    /// <summary>Problems in file order; empty on success.</summary>
    public IReadOnlyList<ConfigProblem> Problems { get; }

    /// <summary>
    /// In a file that loaded: what stops nodes from starting with it (no TLS without <c>insecure: true</c>), in file
    /// order. Tools (token, dev-certs) still use such a file; check-config fails on it; a node refuses it with
    /// <see cref="SecurityPosture.StartRefusal"/>.
    /// </summary>
    public IReadOnlyList<ConfigProblem> StartProblems { get; }

    /// <summary>In a file that loaded: what works but exposes something (plain TCP on a non-loopback address), in file order.</summary>
    public IReadOnlyList<ConfigProblem> Warnings { get; }

    /// <exception cref="TopologyException">The file has problems; the message lists all of them.</exception>
    public TopologyConfig GetConfigOrThrow() => Config ?? throw new TopologyException(Problems);
}

/// <summary>A topology file could not be used; <see cref="Problems"/> says why.</summary>
public sealed class TopologyException : Exception
{
    public TopologyException(IReadOnlyList<ConfigProblem> problems)
        : base(Describe(problems))
    {
        Problems = problems;
    }

    public IReadOnlyList<ConfigProblem> Problems { get; }

    private static string Describe(IReadOnlyList<ConfigProblem> problems)
    {
        var text = new StringBuilder();
        text.Append(problems.Count == 1 ? "The topology has 1 problem:" : $"The topology has {problems.Count} problems:");
        foreach (var problem in problems)
        {
            text.Append('\n').Append(problem);
        }
        return text.ToString();
    }
}
