namespace GeoRelay.Topology;

/// <summary>
/// Whether nodes may start with a topology's security settings. Mutual TLS between nodes is the default: without a
/// <c>tls</c> section a node refuses to start unless the file says <c>insecure: true</c> (as CockroachDB's
/// <c>--insecure</c>), because on plain TCP anyone who can reach a node's listen port can pose as another node.
/// </summary>
public static class SecurityPosture
{
    /// <summary>Null when nodes may start; otherwise why not and exactly what to add, naming the file.</summary>
    public static string? StartRefusal(TopologyConfig topology)
    {
        ArgumentNullException.ThrowIfNull(topology);
        return topology.Tls is null && !topology.Insecure ? $"{topology.SourcePath}: {MissingTls(topology.SourcePath)}" : null;
    }

    /// <summary>The refusal without the file name in front (check-config prints it with a line and column).</summary>
    internal static string MissingTls(string file)
    {
        string folder = Path.GetDirectoryName(file) is { Length: > 0 } d ? d : ".";
        return "no 'tls' section, and nodes refuse to run without TLS: on plain TCP anyone who can reach a node's listen port "
            + "can pose as another node (the leader, say). Add\n"
            + "  tls:\n    ca: certs/ca.crt\n    certificates: certs\n"
            + $"(`georelay dev-certs --config {file} --out {Path.Combine(folder, "certs")}` writes a CA and every node's certificate there), "
            + "or, only on a trusted network or for local testing, add\n  insecure: true";
    }
}
