namespace Microsoft.ML.Sparsity.Inference;

/// <summary>
/// Chooses the sparsity level of a nested model's predictions for a latency budget (dynamic rerouting): at warm-up the
/// densest level whose measured latency fits, then, after every <see cref="Window"/> predictions, to the next sparser
/// level that is faster when the window's 99th percentile exceeded the budget (the load raised it: queueing or a busy
/// CPU), or one level denser when that level would fit with <see cref="Headroom"/> to spare, its latency estimated as
/// the window's scaled by the two levels' service times. Latencies are in any unit (Stopwatch ticks in the engine, a
/// fake clock's in tests).
/// </summary>
/// <remarks>
/// Service times (a prediction alone, without queueing) start as the warm-up's and follow what the predictions take:
/// each window sets its level's to the window's median, and scales the levels not used yet by the same factor, so a
/// machine that has become slower or busier since warm-up moves every estimate. Not thread-safe: the engine serialises
/// <see cref="Record"/>.
/// </remarks>
internal sealed class SparsityLevelPicker
{
    /// <summary>
    /// Predictions per decision. The 99th percentile of 500 is the sixth-slowest, so one preempted prediction (a
    /// millisecond or more on a busy machine) does not move the level; with windows of 100 it did, at every load.
    /// </summary>
    public const int Window = 500;

    /// <summary>A denser level is taken back only when its estimate is below this share of the budget, so the choice does not flap.</summary>
    public const double Headroom = 0.5;

    private readonly double[] _warmUp;
    private readonly double[] _service;
    private readonly bool[] _used;
    private readonly double _budget;
    private readonly long[] _latencies = new long[Window];
    private readonly long[] _services = new long[Window];
    private int _count;

    /// <param name="warmUp">Each level's latency measured at warm-up, densest level first.</param>
    /// <param name="budget">The latency every prediction should stay within.</param>
    public SparsityLevelPicker(double[] warmUp, double budget)
    {
        _warmUp = warmUp;
        _service = (double[])warmUp.Clone();
        _used = new bool[warmUp.Length];
        _budget = budget;
        Level = Array.FindIndex(warmUp, w => w <= budget);
        WithinBudget = Level >= 0;
        if (Level < 0) Level = warmUp.Length - 1;
    }

    /// <summary>The index of the level the next prediction uses (0 = densest).</summary>
    public int Level { get; private set; }

    /// <summary>
    /// False when the level in use did not meet the budget: at warm-up no level did (the sparsest is used), or the last
    /// window's 99th percentile exceeded it.
    /// </summary>
    public bool WithinBudget { get; private set; }

    /// <summary>Each level's service time as the picker now estimates it (see the remarks on the class).</summary>
    public IReadOnlyList<double> ServiceTimes => _service;

    /// <summary>Adds one prediction's latency (from its request's arrival) and service time (the prediction alone); at a window's end, moves the level.</summary>
    public void Record(long latency, long service)
    {
        _latencies[_count] = latency;
        _services[_count++] = service;
        if (_count < Window) return;
        _count = 0;
        Array.Sort(_latencies);
        Array.Sort(_services);
        long p99 = _latencies[(int)Math.Ceiling(0.99 * Window) - 1];
        double median = _services[Window / 2];
        _used[Level] = true;
        _service[Level] = median;
        for (int i = 0; i < _service.Length; i++)
            if (!_used[i]) _service[i] = _warmUp[i] * median / _warmUp[Level];

        WithinBudget = p99 <= _budget;
        if (p99 > _budget)
        {
            // The next sparser level that is faster: a sparser level's formats can be slower than a denser one's.
            for (int sparser = Level + 1; sparser < _service.Length; sparser++)
                if (_service[sparser] < _service[Level])
                {
                    Level = sparser;
                    break;
                }
        }
        else if (Level > 0 && p99 * _service[Level - 1] / _service[Level] < Headroom * _budget)
        {
            Level--;
        }
    }
}
