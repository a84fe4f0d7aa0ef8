using System.Diagnostics;

namespace Microsoft.ML.Sparsity.Engine;

/// <summary>
/// Decides whether a <see cref="WorkerPool"/>'s caller runs one kind of call with the workers or alone, by timing
/// both on the machine as it is now. Calls are timed in windows of <see cref="WindowCalls"/> calls, or fewer long
/// ones taking <see cref="WindowTicks"/> (wall time per call); the pool
/// runs the way that measured faster (the workers only when they save at least <see cref="RequiredGain"/>), and now
/// and then times a window of the other way: after 1 window, then 2, 4,
/// … up to <see cref="MaxProbeInterval"/> windows (or <see cref="MaxProbeSpacing"/>) while the same way keeps winning, and after 1 window again once
/// the winner changes. A window with the workers that takes more than twice the last window alone switches at once,
/// without waiting for a probe: a competing process that takes a core can make the workers cost far more than they
/// save (measured beside two CPU-bound processes on 2 cores: 2 threads trained at 0.77× the speed of 1).
/// </summary>
/// <remarks>
/// Windows of short calls are counted in calls rather than time, so a window covers the same work however slowly the
/// machine runs it; a training step makes the same calls every step, so windows of many steps compare like with like. On a quiet
/// machine the probes cost about one window in <see cref="MaxProbeInterval"/> run at the speed of one thread.
/// Not thread-safe: only the caller that holds the pool uses it.
/// </remarks>
internal sealed class ParallelismProbe
{
    /// <summary>
    /// Calls per window. LeNet-300-100 training at batch 64 makes about 6 parallel calls per step, 20 000 per second
    /// on 2 idle cores, so a window covers about 10 steps: 3 ms on a quiet machine, several scheduler time slices
    /// under load.
    /// </summary>
    public const int WindowCalls = 64;

    /// <summary>
    /// A window also ends once its calls have taken 20 ms: a batch of 256 images through a wide CNN takes 40 ms a
    /// call, and a probe of 64 such calls alone ran one thread for 5 s. Training's short calls (64 in about 3 ms)
    /// still fill their windows by count, even on a machine several times slower under load.
    /// </summary>
    public static readonly long WindowTicks = Stopwatch.Frequency / 50;

    /// <summary>Calls a probe window runs before it may end early (<see cref="ClearlyLosing"/>): a quarter of a window, about two training steps.</summary>
    public const int EarlyCalls = WindowCalls / 4;

    /// <summary>How much slower per call a probe window must be, after <see cref="EarlyCalls"/> calls, to end early.</summary>
    public const double EarlyLossRatio = 1.5;

    /// <summary>The most windows the winning way runs between two windows of the other way.</summary>
    public const int MaxProbeInterval = 64;

    /// <summary>
    /// How much faster the workers must make a call to be used: 5%. Beside one competing process the two ways measure
    /// within a few percent of each other, and a window of noise then decided; a second thread that barely pays takes a
    /// core from the competitor for nothing.
    /// </summary>
    public const double RequiredGain = 0.05;

    /// <summary>
    /// The longest the winning way runs without a window of the other way: 1 s of wall time. Each kind of call has a
    /// probe of its own and a training step makes each kind about once, so 64 windows of 64 calls took several seconds
    /// (minutes for a kind made a few times a second): a training that ran alone through a spell of competition went
    /// on alone for seconds after it ended. A probe window a second costs about 2% of a kind's time.
    /// </summary>
    public static readonly long MaxProbeSpacing = Stopwatch.Frequency;

    private readonly Func<long> _clock;
    private double _togetherTicks, _aloneTicks = double.PositiveInfinity;
    private long _windowTicks, _lastProbe;
    private int _windowCalls, _windowsSinceProbe, _probeInterval = 1;
    private bool _aloneWins, _probing;

    /// <summary>A probe on the wall clock, or on <paramref name="clock"/> (ticks of <see cref="Stopwatch.Frequency"/>; tests).</summary>
    public ParallelismProbe(Func<long>? clock = null)
    {
        _clock = clock ?? Stopwatch.GetTimestamp;
        _lastProbe = _clock();
    }

    /// <summary>
    /// Whether the probe window under way has already lost: after <see cref="EarlyCalls"/> calls it takes more than
    /// <see cref="EarlyLossRatio"/> times as long per call as the winner's last window. It then ends at once, so a
    /// way that plainly loses (the workers beside busy processes; the caller alone on a quiet machine) costs a quarter
    /// of a window rather than a whole one.
    /// </summary>
    private bool ClearlyLosing() =>
        _probing && _windowCalls >= EarlyCalls && _windowTicks > EarlyLossRatio * _windowCalls * (Alone ? _togetherTicks : _aloneTicks);

    /// <summary>How the next call runs: true on the caller alone, false with the workers.</summary>
    public bool Alone { get; private set; }

    /// <summary>How many windows the winner runs now before the next probe (1, 2, 4, … <see cref="MaxProbeInterval"/>).</summary>
    public int ProbeInterval => _probeInterval;

    /// <summary>Adds the wall time of a call that ran as <see cref="Alone"/> said; at a window's end, picks the next window's way.</summary>
    public void Record(long ticks)
    {
        _windowTicks += ticks;
        if (++_windowCalls < WindowCalls && _windowTicks < WindowTicks && !ClearlyLosing())
            return;
        double perCall = (double)_windowTicks / _windowCalls;
        _windowCalls = 0;
        _windowTicks = 0;
        if (Alone)
            _aloneTicks = perCall;
        else
            _togetherTicks = perCall;

        if (_probing)
        {
            bool aloneWins = _aloneTicks <= _togetherTicks * (1 + RequiredGain);
            _probeInterval = aloneWins == _aloneWins ? Math.Min(2 * _probeInterval, MaxProbeInterval) : 1;
            _aloneWins = aloneWins;
            _probing = false;
            _windowsSinceProbe = 0;
            _lastProbe = _clock();
        }
        else if (!Alone && perCall > 2 * _aloneTicks)
        {
            _aloneWins = true;
            _probeInterval = 1;
            _windowsSinceProbe = 0;
        }
        else if (++_windowsSinceProbe >= _probeInterval || _clock() - _lastProbe > MaxProbeSpacing)
        {
            _probing = true;
        }

        Alone = _probing ? !_aloneWins : _aloneWins;
    }
}
