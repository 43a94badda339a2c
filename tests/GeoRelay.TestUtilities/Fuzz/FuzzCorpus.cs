namespace GeoRelay.TestUtilities.Fuzzing;

/// <summary>
/// The corpus on disk: one file per input, named <c>&lt;target&gt;.&lt;name&gt;.bin</c>. Seeds come from
/// <see cref="DecoderTargets.Seeds"/>; inputs that once crashed a decoder are kept as <c>&lt;target&gt;.crash-*.bin</c>
/// and replayed by the unit tests.
/// </summary>
public static class FuzzCorpus
{
    public static string DefaultDirectory => Path.Combine(AppContext.BaseDirectory, "Fuzz", "corpus");

    public static List<(string Target, string Name, byte[] Bytes)> Load(string directory)
    {
        var list = new List<(string, string, byte[])>();
        foreach (var path in Directory.GetFiles(directory, "*.bin").Order(StringComparer.Ordinal))
        {
            var file = Path.GetFileNameWithoutExtension(path);
            int dot = file.IndexOf('.');
            if (dot <= 0) throw new InvalidDataException($"{path}: corpus files are named <target>.<name>.bin");
            list.Add((file[..dot], file[(dot + 1)..], File.ReadAllBytes(path)));
        }
        return list;
    }

    /// <summary>Writes the seeds (overwriting seeds of the same name; crash inputs are left alone).</summary>
    public static int WriteSeeds(string directory)
    {
        Directory.CreateDirectory(directory);
        int n = 0;
        foreach (var (target, name, bytes) in DecoderTargets.Seeds())
        {
            File.WriteAllBytes(Path.Combine(directory, $"{target}.{name}.bin"), bytes);
            n++;
        }
        return n;
    }

    public static string SaveCrash(string directory, FuzzFinding finding)
    {
        var path = Path.Combine(directory, $"{finding.Target}.crash-{Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(finding.Input))[..12].ToLowerInvariant()}.bin");
        File.WriteAllBytes(path, finding.Input);
        return path;
    }
}
