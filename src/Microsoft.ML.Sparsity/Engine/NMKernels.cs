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
            if (KernelIsa == VectorIsa.Avx512)
            {
                for (int t = 0; t < tiles; t += 2)
                {
                    // Two tiles share each broadcast of x; a lone last tile pairs with itself (its result discarded).
                    int u = Math.Min(t + 1, tiles - 1);
                    bool whole = (t + 2) * TileRows <= Rows;
                    float* out0 = whole ? y + t * TileRows : last, out1 = out0 + TileRows;
                    float* v0 = values + (long)t * tileValues, v1 = values + (long)u * tileValues;
                    byte* i0 = indices + (long)t * tileIndices, i1 = indices + (long)u * tileIndices;
                    if (M == 4)
                        TilePair4(x, columns, v0, v1, i0, i1, out0, out1);
                    else
                        TilePair8(x, columns, v0, v1, i0, i1, out0, out1);
                    if (!whole)
                        new Span<float>(last, Math.Min(2 * TileRows, Rows - t * TileRows)).CopyTo(new Span<float>(y + t * TileRows, Rows - t * TileRows));
                }

                return;
            }

            for (int t = 0; t < tiles; t++)
            {
                bool whole = (t + 1) * TileRows <= Rows;
                float* output = whole ? y + t * TileRows : last;
                float* v = values + (long)t * tileValues;
                byte* i = indices + (long)t * tileIndices;
                switch (KernelIsa)
                {
                    case VectorIsa.Avx2:
                        if (M == 4)
                            Tile4x256(x, columns, v, i, output);
                        else
                            Tile8x256(x, columns, v, i, output);
                        break;
                    case VectorIsa.Vector128:
                        // The tile as four registers of 4 rows.
                        for (int h = 0; h < TileRows; h += 4)
                        {
                            if (M == 4)
                                Rows4x128(x, columns, v + h, i + h, output + h);
                            else
                                Rows8x128(x, columns, v + h, i + h, output + h);
                        }

                        break;
                    default:
                        TileScalar(x, columns, v, i, output);
                        break;
                }

                if (!whole)
                    new Span<float>(last, Rows - t * TileRows).CopyTo(new Span<float>(y + t * TileRows, Rows - t * TileRows));
            }
        }
    }

    /// <summary>
    /// AVX2, M = 4: one tile as two registers of 8 rows, which share each slot's broadcast of its group's 4 x values
    /// (the broadcast and the column load once per 16 rows, not per 8).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Tile4x256(float* x, int* columns, float* v, byte* i, float* output)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        int quads = Slots / 4;
        for (int q = 0; q < quads; q++, v += 64, i += 16, columns += 4)
        {
            Vector256<int> k = Avx2.ConvertToVector256Int32(i), l = Avx2.ConvertToVector256Int32(i + 8);
            Vector256<float> g = Avx.BroadcastVector128ToVector256(x + columns[0]);
            a0 = Fma.MultiplyAdd(Vector256.Load(v), Avx.PermuteVar(g, k), a0);
            b0 = Fma.MultiplyAdd(Vector256.Load(v + 8), Avx.PermuteVar(g, l), b0);
            g = Avx.BroadcastVector128ToVector256(x + columns[1]);
            a1 = Fma.MultiplyAdd(Vector256.Load(v + 16), Avx.PermuteVar(g, Avx2.ShiftRightLogical(k, 2)), a1);
            b1 = Fma.MultiplyAdd(Vector256.Load(v + 24), Avx.PermuteVar(g, Avx2.ShiftRightLogical(l, 2)), b1);
            g = Avx.BroadcastVector128ToVector256(x + columns[2]);
            a2 = Fma.MultiplyAdd(Vector256.Load(v + 32), Avx.PermuteVar(g, Avx2.ShiftRightLogical(k, 4)), a2);
            b2 = Fma.MultiplyAdd(Vector256.Load(v + 40), Avx.PermuteVar(g, Avx2.ShiftRightLogical(l, 4)), b2);
            g = Avx.BroadcastVector128ToVector256(x + columns[3]);
            a3 = Fma.MultiplyAdd(Vector256.Load(v + 48), Avx.PermuteVar(g, Avx2.ShiftRightLogical(k, 6)), a3);
            b3 = Fma.MultiplyAdd(Vector256.Load(v + 56), Avx.PermuteVar(g, Avx2.ShiftRightLogical(l, 6)), b3);
        }

        Vector256.Store((a0 + a1) + (a2 + a3), output);
        Vector256.Store((b0 + b1) + (b2 + b3), output + 8);
    }

    /// <summary>AVX2, M = 8: one tile as two registers of 8 rows sharing each slot's load of its group's 8 x values; vpermps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Tile8x256(float* x, int* columns, float* v, byte* i, float* output)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        int quads = Slots / 4;
        for (int q = 0; q < quads; q++, v += 64, i += 32, columns += 4)
        {
            Vector256<int> k = Avx2.ConvertToVector256Int32(i), l = Avx2.ConvertToVector256Int32(i + 8);
            Vector256<float> g = Vector256.Load(x + columns[0]);
            a0 = Fma.MultiplyAdd(Vector256.Load(v), Avx2.PermuteVar8x32(g, k), a0);
            b0 = Fma.MultiplyAdd(Vector256.Load(v + 8), Avx2.PermuteVar8x32(g, l), b0);
            g = Vector256.Load(x + columns[1]);
            a1 = Fma.MultiplyAdd(Vector256.Load(v + 16), Avx2.PermuteVar8x32(g, Avx2.ShiftRightLogical(k, 4)), a1);
            b1 = Fma.MultiplyAdd(Vector256.Load(v + 24), Avx2.PermuteVar8x32(g, Avx2.ShiftRightLogical(l, 4)), b1);
            k = Avx2.ConvertToVector256Int32(i + 16);
            l = Avx2.ConvertToVector256Int32(i + 24);
            g = Vector256.Load(x + columns[2]);
            a2 = Fma.MultiplyAdd(Vector256.Load(v + 32), Avx2.PermuteVar8x32(g, k), a2);
            b2 = Fma.MultiplyAdd(Vector256.Load(v + 40), Avx2.PermuteVar8x32(g, l), b2);
            g = Vector256.Load(x + columns[3]);
            a3 = Fma.MultiplyAdd(Vector256.Load(v + 48), Avx2.PermuteVar8x32(g, Avx2.ShiftRightLogical(k, 4)), a3);
            b3 = Fma.MultiplyAdd(Vector256.Load(v + 56), Avx2.PermuteVar8x32(g, Avx2.ShiftRightLogical(l, 4)), b3);
        }

        Vector256.Store((a0 + a1) + (a2 + a3), output);
        Vector256.Store((b0 + b1) + (b2 + b3), output + 8);
    }

    /// <summary>Vector128, M = 4: 4 rows of a tile; the group's 4 x values in one register, one shuffle (indices masked to 0..3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Rows4x128(float* x, int* columns, float* v, byte* i, float* output)
    {
        Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector128<int> low = Vector128.Create(3);
        int quads = Slots / 4;
        for (int q = 0; q < quads; q++, v += 64, i += 16, columns += 4)
        {
            Vector128<int> k = FourBytes(i);
            a0 = Vector128.MultiplyAddEstimate(Vector128.Load(v), Vector128.ShuffleNative(Vector128.Load(x + columns[0]), k & low), a0);
            a1 = Vector128.MultiplyAddEstimate(Vector128.Load(v + 16), Vector128.ShuffleNative(Vector128.Load(x + columns[1]), (k >>> 2) & low), a1);
            a2 = Vector128.MultiplyAddEstimate(Vector128.Load(v + 32), Vector128.ShuffleNative(Vector128.Load(x + columns[2]), (k >>> 4) & low), a2);
            a3 = Vector128.MultiplyAddEstimate(Vector128.Load(v + 48), Vector128.ShuffleNative(Vector128.Load(x + columns[3]), k >>> 6), a3);
        }

        Vector128.Store((a0 + a1) + (a2 + a3), output);
    }

    /// <summary>Vector128, M = 8: 4 rows of a tile; both 4-value halves of the group shuffled, bit 2 of the index selects.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Rows8x128(float* x, int* columns, float* v, byte* i, float* output)
    {
        Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int quads = Slots / 4;
        for (int q = 0; q < quads; q++, v += 64, i += 32, columns += 4)
        {
            Vector128<int> k = FourBytes(i), l = FourBytes(i + 16);
            a0 = Vector128.MultiplyAddEstimate(Vector128.Load(v), Pick8(x + columns[0], k), a0);
            a1 = Vector128.MultiplyAddEstimate(Vector128.Load(v + 16), Pick8(x + columns[1], k >>> 4), a1);
            a2 = Vector128.MultiplyAddEstimate(Vector128.Load(v + 32), Pick8(x + columns[2], l), a2);
            a3 = Vector128.MultiplyAddEstimate(Vector128.Load(v + 48), Pick8(x + columns[3], l >>> 4), a3);
        }

        Vector128.Store((a0 + a1) + (a2 + a3), output);
    }

    /// <summary>g[index &amp; 7] per lane, from the group's 8 values at <paramref name="g"/> (higher index bits ignored).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Pick8(float* g, Vector128<int> index)
    {
        Vector128<int> low = index & Vector128.Create(3), upper = Vector128.Create(4);
        return Vector128.ConditionalSelect(Vector128.Equals(index & upper, upper).AsSingle(),
            Vector128.ShuffleNative(Vector128.Load(g + 4), low), Vector128.ShuffleNative(Vector128.Load(g), low));
    }

    /// <summary>The four bytes at <paramref name="p"/>, zero-extended to 32-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> FourBytes(byte* p) =>
        Vector128.WidenLower(Vector128.WidenLower(Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<uint>(p)).AsByte())).AsInt32();

    /// <summary>AVX-512, two tiles, M = 4: 2-bit indices, four slots per index byte.</summary>
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

    /// <summary>AVX-512, two tiles, M = 8: 4-bit indices, two slots per index byte.</summary>
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
                return sum + v[s * TileRows + lane] * x[columns[s] + index]; // not MathF.FusedMultiplyAdd: a software routine without FMA
            }
        }
    }
}
