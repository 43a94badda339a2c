using NUnit.Framework;
using GeoRelay.Topology;

namespace GeoRelay.Tests.Unit.Topology;

internal static class TopologyTestFiles
{
    /// <summary>
    /// The samples as shipped: copied next to the test assembly by the topology project, or found by
    /// walking up to the repository root (GeoRelay.sln).
    /// </summary>
    public static string Sample(string name)
    {
        string copied = Path.Combine(AppContext.BaseDirectory, "samples", name);
        if (File.Exists(copied))
        {
            return copied;
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "GeoRelay.sln")))
            {
                return Path.Combine(dir.FullName, "topology", "samples", name);
            }
        }
        throw new FileNotFoundException($"sample {name} not found next to the tests or under the repository root");
    }

    public static IReadOnlyList<ConfigProblem> Problems(string yaml)
    {
        var result = TopologyLoader.Parse(yaml, "t.yaml");
        Assert.That(result.Success, Is.False, "expected the file to be rejected");
        return result.Problems;
    }

    public static TopologyConfig Valid(string yaml)
    {
        var result = TopologyLoader.Parse(yaml, "t.yaml");
        Assert.That(result.Problems, Is.Empty);
        return result.Config!;
    }

    /// <summary>Asserts the file has exactly one problem, at that position, whose message contains every fragment.</summary>
    public static void AssertOnlyProblem(string yaml, int line, int column, params string[] fragments)
    {
        var problems = Problems(yaml);
        Assert.That(problems, Has.Count.EqualTo(1), string.Join("\n", problems));
        AssertProblem(problems[0], line, column, fragments);
    }

    public static void AssertProblem(ConfigProblem problem, int line, int column, params string[] fragments)
    {
        Assert.Multiple(() =>
        {
            Assert.That(problem.File, Is.EqualTo("t.yaml"));
            Assert.That((problem.Line, problem.Column), Is.EqualTo((line, column)), problem.ToString());
            foreach (string fragment in fragments)
            {
                Assert.That(problem.Message, Does.Contain(fragment));
            }
        });
    }

    /// <summary>A small valid topology; tests break one line of it.</summary>
    public const string Small = """
        cluster: test
        leader: ldr
        datacenters:
          home:
            members: [h1]
          away:
            relays: [p1, p2]
            members: [a1, a2]
        nodes:
          ldr: { dc: home, listen: 127.0.0.1:7001, publish: 127.0.0.1:7000 }
          h1: { dc: home, listen: 127.0.0.1:7011 }
          p1: { dc: away, listen: 127.0.0.1:7021, learners: 127.0.0.1:7022 }
          p2: { dc: away, listen: 127.0.0.1:7031, learners: 127.0.0.1:7032 }
          a1: { dc: away, listen: 127.0.0.1:7041, learners: 127.0.0.1:7042 }
          a2: { dc: away, listen: 127.0.0.1:7051 }
        """;

    /// <summary><see cref="Small"/> with the line starting with <paramref name="lineStart"/> (after indentation) replaced.</summary>
    public static string SmallWith(string lineStart, string replacement)
    {
        var lines = Small.Split('\n');
        int index = Array.FindIndex(lines, l => l.TrimStart().StartsWith(lineStart, StringComparison.Ordinal));
        Assert.That(index, Is.GreaterThanOrEqualTo(0), lineStart);
        lines[index] = replacement;
        return string.Join('\n', lines);
    }
}
