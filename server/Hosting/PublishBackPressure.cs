namespace GeoRelay.Server.Hosting;

/// <summary>
/// TCP back-pressure on the publish port: its connections stop reading while <see cref="Capacity"/> returns false,
/// and go on after the engine call that made room. Capacity is engine state, so this shares the engine's lock.
/// </summary>
internal sealed class PublishBackPressure(object gate, CancellationToken stopping)
{
    private TaskCompletionSource _capacity = new(TaskCreationOptions.RunContinuationsAsynchronously); // under gate

    public Func<bool>? Capacity { get; set; }

    /// <summary>Before each read on a publish connection: done at once while there is room.</summary>
    public ValueTask WaitAsync()
    {
        lock (gate)
        {
            if (Capacity is null || Capacity()) return ValueTask.CompletedTask;
            if (_capacity.Task.IsCompleted) _capacity = new(TaskCreationOptions.RunContinuationsAsynchronously);
            return new ValueTask(_capacity.Task.WaitAsync(stopping));
        }
    }

    /// <summary>After the engine's commands ran (lock held): lets the paused connections read again if there is room.</summary>
    public void ResumeIfRoom()
    {
        if (Capacity is not null && !_capacity.Task.IsCompleted && Capacity()) _capacity.TrySetResult();
    }
}
