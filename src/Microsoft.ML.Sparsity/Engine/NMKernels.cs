using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparsity.Engine;

// Kernels of NMMatrix.MultiplyTransposed (layout and method in NMMatrix's remarks): one batch row, all tiles.
internal sealed unsafe partial class NMMatrix
{
    /// <summary>y[0, Rows) = x · Wᵀ for one batch row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    protected override void MultiplyRow(float* x, float* y)
    {
        float* last = stackalloc float[2 * TileRows];
        float* values = Values.Pointer;
        byte* indices = Indices.Pointer;
        fixed (int* columns = _slotColumns)
        {
            int tiles = Tiles, tileValues = Slots * TileRows, tileIndices = IndexTileBytes;
            for (int t = 0; t < tiles; t += 2)
            {
                // Two tiles share each broadcast of x; a lone last tile pairs with itself (its result discarded).
                int u = Math.Min(t + 1, tiles - 1);
                bool whole = (t + 2) * TileRows <= Rows;
                float* out0 = whole ? y + t * TileRows : last, out1 = out0 + TileRows;
                float* v0 = values + (long)t * tileValues, v1 = values + (long)u * tileValues;
                byte* i0 = indices + (long)t * tileIndices, i1 = indices + (long)u * tileIndices;
                switch (_kernel)
                {
                    case RowKernel.FourWide:
                        TilePair4(x, columns, v0, v1, i0, i1, out0, out1);
                        break;
                    case RowKernel.EightWide:
                        TilePair8(x, columns, v0, v1, i0, i1, out0, out1);
                        break;
                    default:
                        TileScalar(x, columns, v0, i0, out0);
                        TileScalar(x, columns, v1, i1, out1);
                        break;
                }

                if (!whole)
                    new Span<float>(last, Math.Min(2 * TileRows, Rows - t * TileRows)).CopyTo(new Span<float>(y + t * TileRows, Rows - t * TileRows));
            }
        }
    }

    /// <summary>Two tiles, M = 4: 2-bit indices, four slots per index byte.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void TilePair4(float* x, int* columns, float* v0, float* v1, byte* i0, byte* i1, float* out0, float* out1)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        int quads = Slots / 4;
        for (int q = 0; q < quads; q++, v0 += 64, v1 += 64, i0 += 16, i1 += 16, columns += 4)
        {
            Vector512<int> k0 = Avx512F.ConvertToVector512Int32(Vector128.Load(i0));
            Vector512<int> k1 = Avx512F.ConvertToVector512Int32(Vector128.Load(i1));
            Vector512<float> g = Avx512F.BroadcastVector128ToVector512(x + columns[0]);
            a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(v0), Avx512F.PermuteVar4x32(g, k0), a0);
            b0 = Avx512F.FusedMultiplyAdd(Vector512.Load(v1), Avx512F.PermuteVar4x32(g, k1), b0);
            g = Avx512F.BroadcastVector128ToVector512(x + columns[1]);
            a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(v0 + 16), Avx512F.PermuteVar4x32(g, Avx512F.ShiftRightLogical(k0, 2)), a1);
            b1 = Avx512F.FusedMultiplyAdd(Vector512.Load(v1 + 16), Avx512F.PermuteVar4x32(g, Avx512F.ShiftRightLogical(k1, 2)), b1);
            g = Avx512F.BroadcastVector128ToVector512(x + columns[2]);
            a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(v0 + 32), Avx512F.PermuteVar4x32(g, Avx512F.ShiftRightLogical(k0, 4)), a2);
            b2 = Avx512F.FusedMultiplyAdd(Vector512.Load(v1 + 32), Avx512F.PermuteVar4x32(g, Avx512F.ShiftRightLogical(k1, 4)), b2);
            g = Avx512F.BroadcastVector128ToVector512(x + columns[3]);
            a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(v0 + 48), Avx512F.PermuteVar4x32(g, Avx512F.ShiftRightLogical(k0, 6)), a3);
            b3 = Avx512F.FusedMultiplyAdd(Vector512.Load(v1 + 48), Avx512F.PermuteVar4x32(g, Avx512F.ShiftRightLogical(k1, 6)), b3);
        }

        Vector512.Store((a0 + a1) + (a2 + a3), out0);
        Vector512.Store((b0 + b1) + (b2 + b3), out1);
    }

    /// <summary>Two tiles, M = 8: 4-bit indices, two slots per index byte.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void TilePair8(float* x, int* columns, float* v0, float* v1, byte* i0, byte* i1, float* out0, float* out1)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        int quads = Slots / 4;
        for (int q = 0; q < quads; q++, v0 += 64, v1 += 64, i0 += 32, i1 += 32, columns += 4)
        {
            Vector512<int> k0 = Avx512F.ConvertToVector512Int32(Vector128.Load(i0));
            Vector512<int> k1 = Avx512F.ConvertToVector512Int32(Vector128.Load(i1));
            Vector512<float> g = Avx512DQ.BroadcastVector256ToVector512(x + columns[0]);
            a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(v0), Avx512F.PermuteVar16x32(g, k0), a0);
            b0 = Avx512F.FusedMultiplyAdd(Vector512.Load(v1), Avx512F.PermuteVar16x32(g, k1), b0);
            g = Avx512DQ.BroadcastVector256ToVector512(x + columns[1]);
            a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(v0 + 16), Avx512F.PermuteVar16x32(g, Avx512F.ShiftRightLogical(k0, 4)), a1);
            b1 = Avx512F.FusedMultiplyAdd(Vector512.Load(v1 + 16), Avx512F.PermuteVar16x32(g, Avx512F.ShiftRightLogical(k1, 4)), b1);
            k0 = Avx512F.ConvertToVector512Int32(Vector128.Load(i0 + 16));
            k1 = Avx512F.ConvertToVector512Int32(Vector128.Load(i1 + 16));
            g = Avx512DQ.BroadcastVector256ToVector512(x + columns[2]);
            a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(v0 + 32), Avx512F.PermuteVar16x32(g, k0), a2);
            b2 = Avx512F.FusedMultiplyAdd(Vector512.Load(v1 + 32), Avx512F.PermuteVar16x32(g, k1), b2);
            g = Avx512DQ.BroadcastVector256ToVector512(x + columns[3]);
            a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(v0 + 48), Avx512F.PermuteVar16x32(g, Avx512F.ShiftRightLogical(k0, 4)), a3);
            b3 = Avx512F.FusedMultiplyAdd(Vector512.Load(v1 + 48), Avx512F.PermuteVar16x32(g, Avx512F.ShiftRightLogical(k1, 4)), b3);
        }

        Vector512.Store((a0 + a1) + (a2 + a3), out0);
        Vector512.Store((b0 + b1) + (b2 + b3), out1);
    }

    /// <summary>One tile, any M, one lane at a time (the same summation order as the vector kernels: four partial sums by slot mod 4).</summary>
    private void TileScalar(float* x, int* columns, float* v, byte* indices, float* output)
    {
        int bits = IndexBits, perByte = SlotsPerByte, mask = (1 << bits) - 1;
        for (int lane = 0; lane < TileRows; lane++)
        {
            float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
            for (int s = 0; s < Slots; s += 4)
            {
                s0 = Term(s, s0);
                s1 = Term(s + 1, s1);
                s2 = Term(s + 2, s2);
                s3 = Term(s + 3, s3);
            }

            output[lane] = (s0 + s1) + (s2 + s3);

            float Term(int s, float sum)
            {
                int index = (indices[s / perByte * TileRows + lane] >> (s % perByte * bits)) & mask;
                return MathF.FusedMultiplyAdd(v[s * TileRows + lane], x[columns[s] + index], sum);
            }
        }
    }
}
