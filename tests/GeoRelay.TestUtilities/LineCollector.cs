using Microsoft.Extensions.Logging;

namespace GeoRelay.TestUtilities;

/// <summary>Log lines of one node or host in a test process, for asserting what an operator would read.</summary>
public sealed class LineCollector : ILoggerProvider
{
    public static readonly ILoggerFactory None = LoggerFactory.Create(_ => { });
    private readonly List<string> _lines = new();

    public LineCollector() => Factory = LoggerFactory.Create(b => b.AddProvider(this));

    public ILoggerFactory Factory { get; }

    public string Text
    {
        get { lock (_lines) return string.Join('\n', _lines); }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose() { }

    private sealed class Logger(LineCollector owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (owner._lines) owner._lines.Add(formatter(state, exception));
        }
    }
}
