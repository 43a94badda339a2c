namespace GeoRelay.Bench.Harness;

public static class Paths
{
    /// <summary>The checkout this benchmark runs from: the first folder holding GeoRelay.sln above the working directory, else above the binary.</summary>
    public static string RepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "GeoRelay.sln")))
                    return dir.FullName;
        return Directory.GetCurrentDirectory();
    }
}
