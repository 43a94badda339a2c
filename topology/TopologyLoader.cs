using GeoRelay.Topology.Internal;

namespace GeoRelay.Topology;

/// <summary>
/// Loads and validates a topology file. Every problem is reported at once, in file order, each with
/// its line and column; a config is returned only when there are none.
/// </summary>
public static class TopologyLoader
{
    /// <summary>Reads and validates <paramref name="path"/>; problems name the path as given.</summary>
    public static TopologyLoadResult LoadFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string yaml;
        string fullPath;
        try
        {
            fullPath = Path.GetFullPath(path);
            yaml = File.ReadAllText(fullPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return new TopologyLoadResult(null, [new ConfigProblem(path, 0, 0, "cannot read the topology file: " + e.Message)]);
        }
        return new TopologyReader(path).Read(yaml, fullPath);
    }

    /// <summary>Validates YAML text; <paramref name="fileName"/> is used in problems and as <see cref="TopologyConfig.SourcePath"/>.</summary>
    public static TopologyLoadResult Parse(string yaml, string fileName)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        ArgumentNullException.ThrowIfNull(fileName);
        return new TopologyReader(fileName).Read(yaml, fileName);
    }
}
