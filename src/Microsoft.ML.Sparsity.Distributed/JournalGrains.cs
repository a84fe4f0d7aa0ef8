namespace Microsoft.ML.Sparsity.Distributed;

/// <summary>The grain storage provider a cluster keeps sweep journals in (Redis in a deployment; memory for development).</summary>
internal static class JournalStorage
{
    public const string Name = "sparsity-journal";
}

/// <summary>A sweep journal's state: the sweep's definition and the finished trials' records.</summary>
[GenerateSerializer]
internal sealed class SweepJournalState
{
    [Id(0)] public string[]? Definition { get; set; }
    [Id(1)] public Dictionary<int, string> Records { get; set; } = [];
}

/// <summary>A trial model's state.</summary>
[GenerateSerializer]
internal sealed class TrialModelState
{
    [Id(0)] public byte[]? Model { get; set; }
}

internal sealed class SweepJournalGrain([PersistentState("journal", JournalStorage.Name)] IPersistentState<SweepJournalState> state) : Grain, ISweepJournalGrain
{
    public async Task Open(string[] definition)
    {
        if (state.State.Definition is not { } existing)
        {
            state.State.Definition = definition;
            await Written(() => state.State.Definition = null);
            return;
        }
        for (int i = 0; i < Math.Max(existing.Length, definition.Length); i++)
        {
            string? was = i < existing.Length ? existing[i] : null, now = i < definition.Length ? definition[i] : null;
            if (was != now)
                throw new ArgumentException($"The cluster's journal '{this.GetPrimaryKeyString()}' holds another sweep: it was made with \"{was ?? "(nothing)"}\", this sweep has \"{now ?? "(nothing)"}\". " +
                    "Use another sweep name, or the same definition to resume.", "SweepName");
        }
    }

    public Task<Dictionary<int, string>> Records() => Task.FromResult(new Dictionary<int, string>(state.State.Records));

    public async Task Commit(int index, string record)
    {
        if (!state.State.Records.TryAdd(index, record)) return;
        await Written(() => state.State.Records.Remove(index));
    }

    /// <summary>Writes the state; if the storage fails, <paramref name="undo"/> takes the change back, so a retried call writes it again.</summary>
    private async Task Written(Action undo)
    {
        try
        {
            await state.WriteStateAsync();
        }
        catch
        {
            undo();
            throw;
        }
    }
}

internal sealed class TrialModelGrain([PersistentState("model", JournalStorage.Name)] IPersistentState<TrialModelState> state) : Grain, ITrialModelGrain
{
    public async Task Put(byte[] model)
    {
        if (state.State.Model is not null) return;
        state.State.Model = model;
        try
        {
            await state.WriteStateAsync();
        }
        catch
        {
            state.State.Model = null; // a retried call writes it again
            throw;
        }
    }

    public Task<byte[]?> Get() => Task.FromResult(state.State.Model);
}
