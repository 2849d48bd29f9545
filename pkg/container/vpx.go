package container

// vp8Size reads a key frame's dimensions (RFC 6386 §9.1: 3-byte frame tag, start code 9d 01 2a,
// then 14-bit width and height with 2-bit scaling each).
func vp8Size(b []byte) (int, int) {
	if len(b) < 10 || b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a {
		return 0, 0
	}
	w := int(b[6]) | int(b[7]&0x3f)<<8
	h := int(b[8]) | int(b[9]&0x3f)<<8
	return w, h
}

// bitReader reads big-endian bits.
type bitReader struct {
	b   []byte
	pos int
}

func (r *bitReader) read(n int) (int, bool) {
	v := 0
	for i := 0; i < n; i++ {
		if r.pos/8 >= len(r.b) {
			return 0, false
		}
		v = v<<1 | int(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v, true
}

// vp9Size reads a key frame's uncompressed header (VP9 bitstream spec §6.2): frame marker, profile,
// show_existing_frame, frame_type, show_frame, error_resilient_mode, sync code, color config, size.
func vp9Size(b []byte) (int, int) {
	r := &bitReader{b: b}
	marker, _ := r.read(2)
	lo, _ := r.read(1)
	hi, _ := r.read(1)
	profile := hi<<1 | lo
	if marker != 2 {
		return 0, 0
	}
	if profile == 3 {
		r.read(1)
	}
	if existing, _ := r.read(1); existing == 1 {
		return 0, 0
	}
	if ft, _ := r.read(1); ft != 0 {
		return 0, 0 // not a key frame
	}
	r.read(2) // show_frame, error_resilient_mode
	if sync, ok := r.read(24); !ok || sync != 0x498342 {
		return 0, 0
	}
	if profile >= 2 {
		r.read(1) // ten_or_twelve_bit
	}
	cs, _ := r.read(3)
	if cs != 7 { // not CS_RGB
		r.read(1) // color_range
		if profile == 1 || profile == 3 {
			r.read(3) // subsampling_x, subsampling_y, reserved_zero
		}
	} else if profile == 1 || profile == 3 {
		r.read(1)
	}
	w, ok1 := r.read(16)
	h, ok2 := r.read(16)
	if !ok1 || !ok2 {
		return 0, 0
	}
	return w + 1, h + 1
}
