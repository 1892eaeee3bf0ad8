package vec

// This file is written by hand, not generated. build/build.sh compiles
// sqlite-vec with its three float32 distance loops (l2_sqr_float, l1_f32 and
// distance_cosine_float) replaced by calls to the imports below, and passes
// this file to wasm2go with -provided, so the translated module calls these
// methods directly.
//
// Why: a KNN spends most of its time in these loops, and as wasm2go
// translates them every float load is a separate bounds-checked load from
// the module's memory slice (a KNN over 20k 384-d vectors took 1.95x the cgo
// engine's time). Here the two vectors are checked once, as slices.
//
// The results are bit for bit those of the C code, which the cgo engine
// runs: one accumulator per sum, in index order, each float32 product
// rounded before it is added (the explicit conversions forbid fusing them
// into an FMA), and the square roots and the final division in float64.
// internal/engine's TestVecDistancesAreExact checks this on both engines.

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// littleEndian reports whether the host stores a float32 in Wasm's byte
// order, so that the module's memory can be read as []float32 in place.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// f32s returns the n float32 values at address p of the module's memory, or
// ok false when they cannot be viewed in place (an unaligned address or a
// big-endian host); it panics, as a Wasm load would trap, when they lie
// outside the memory.
func (m *Module) f32s(p, n int32) (b []byte, v []float32, ok bool) {
	mem := *m.memory
	lo := uint64(uint32(p))
	b = mem[lo : lo+4*uint64(uint32(n))]
	if n == 0 || !littleEndian || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%4 != 0 {
		return b, nil, false
	}
	return b, unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), n), true
}

func f32at(b []byte, i int) float32 {
	return math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
}

// _oi_cosine_f32 is sqlite-vec's distance_cosine_float.
func (m *Module) _oi_cosine_f32(pa, pb, n int32) float32 {
	ba, a, okA := m.f32s(pa, n)
	bb, b, okB := m.f32s(pb, n)
	var dot, am, bm float32
	if okA && okB {
		b = b[:len(a)]
		for i, x := range a {
			y := b[i]
			dot += float32(x * y)
			am += float32(x * x)
			bm += float32(y * y)
		}
	} else {
		for i := range int(n) {
			x, y := f32at(ba, i), f32at(bb, i)
			dot += float32(x * y)
			am += float32(x * x)
			bm += float32(y * y)
		}
	}
	return float32(1 - float64(dot)/(math.Sqrt(float64(am))*math.Sqrt(float64(bm))))
}

// _oi_l2_f32 is sqlite-vec's l2_sqr_float (which, despite its name, returns
// the distance, not its square).
func (m *Module) _oi_l2_f32(pa, pb, n int32) float32 {
	ba, a, okA := m.f32s(pa, n)
	bb, b, okB := m.f32s(pb, n)
	var s float32
	if okA && okB {
		b = b[:len(a)]
		for i, x := range a {
			d := x - b[i]
			s += float32(d * d)
		}
	} else {
		for i := range int(n) {
			d := f32at(ba, i) - f32at(bb, i)
			s += float32(d * d)
		}
	}
	return float32(math.Sqrt(float64(s)))
}

// _oi_l1_f32 is sqlite-vec's l1_f32.
func (m *Module) _oi_l1_f32(pa, pb, n int32) float64 {
	ba, a, okA := m.f32s(pa, n)
	bb, b, okB := m.f32s(pb, n)
	var s float64
	if okA && okB {
		b = b[:len(a)]
		for i, x := range a {
			s += math.Abs(float64(x) - float64(b[i]))
		}
	} else {
		for i := range int(n) {
			s += math.Abs(float64(f32at(ba, i)) - float64(f32at(bb, i)))
		}
	}
	return s
}
