package container

// vp8Key reports whether b is a VP8 key frame and its size (RFC 6386 §9.1: 3-byte frame tag with
// P bit 0, start code 9d 01 2a, then 14-bit width and height, each with 2 bits of scaling).
func vp8Key(b []byte) (key bool, width, height int) {
	if len(b) < 10 || b[0]&1 != 0 || b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a {
		return false, 0, 0
	}
	return true, int(b[6]) | int(b[7]&0x3f)<<8, int(b[8]) | int(b[9]&0x3f)<<8
}

// bitReader reads big-endian bits; past the end it reads zeros and sets bad.
type bitReader struct {
	b   []byte
	pos int
	bad bool
}

func (r *bitReader) read(n int) int {
	v := 0
	for range n {
		if r.pos/8 >= len(r.b) {
			r.bad = true
			return 0
		}
		v = v<<1 | int(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

// vp9Header reads one VP9 frame's uncompressed header (VP9 bitstream spec v0.6 §6.2) as far as the
// frame size: key frames and intra-only frames always code it, inter frames code it when it is not
// copied from a reference (found_ref), which is how SVC upper spatial layers announce their size.
// The size is 0x0 when the header does not code it or b is not a VP9 frame.
func vp9Header(b []byte) (key bool, width, height int) {
	r := &bitReader{b: b}
	if r.read(2) != 2 { // frame_marker
		return false, 0, 0
	}
	profile := r.read(1)
	profile |= r.read(1) << 1
	if profile == 3 {
		r.read(1) // reserved_zero
	}
	if r.read(1) == 1 { // show_existing_frame
		return false, 0, 0
	}
	key = r.read(1) == 0 // frame_type: KEY_FRAME is 0
	showFrame := r.read(1)
	errorResilient := r.read(1)
	intraOnly := 0
	if !key {
		if showFrame == 0 {
			intraOnly = r.read(1)
		}
		if errorResilient == 0 {
			r.read(2) // reset_frame_context
		}
	}
	switch {
	case key || intraOnly == 1:
		if r.read(24) != 0x498342 { // frame_sync_code
			return false, 0, 0
		}
		if key || profile > 0 {
			vp9ColorConfig(r, profile)
		}
		if !key {
			r.read(8) // refresh_frame_flags
		}
	default:
		r.read(8 + 3*4) // refresh_frame_flags, then ref_frame_idx and sign_bias for 3 references
		for range 3 {
			if r.read(1) == 1 { // found_ref: size copied from a reference
				return false, 0, 0
			}
		}
	}
	w, h := r.read(16)+1, r.read(16)+1
	if r.bad {
		return false, 0, 0
	}
	return key, w, h
}

// vp9ColorConfig skips color_config() (§6.2.2).
func vp9ColorConfig(r *bitReader, profile int) {
	if profile >= 2 {
		r.read(1) // ten_or_twelve_bit
	}
	if r.read(3) != 7 { // color_space other than CS_RGB
		r.read(1) // color_range
		if profile == 1 || profile == 3 {
			r.read(3) // subsampling_x, subsampling_y, reserved_zero
		}
	} else if profile == 1 || profile == 3 {
		r.read(1) // reserved_zero
	}
}

// vp9Frames splits a chunk at its superframe index (VP9 spec Annex B), or returns it whole.
func vp9Frames(b []byte) [][]byte {
	if len(b) == 0 {
		return nil
	}
	last := b[len(b)-1]
	if last&0xe0 != 0xc0 {
		return [][]byte{b}
	}
	n, mag := int(last&7)+1, int(last>>3&3)+1
	idx := 2 + n*mag
	if len(b) < idx || b[len(b)-idx] != last {
		return [][]byte{b}
	}
	var out [][]byte
	off, p := 0, len(b)-idx+1
	for range n {
		size := 0
		for k := range mag {
			size |= int(b[p+k]) << (8 * k)
		}
		p += mag
		if size == 0 || off+size > len(b)-idx {
			return [][]byte{b}
		}
		out = append(out, b[off:off+size])
		off += size
	}
	return out
}

// vp9Superframe joins the frames of one picture (SVC spatial layers, or a hidden frame and the one
// shown after it) into one chunk with an index (Annex B), as a Matroska block must hold a whole
// temporal unit (WebM VP9 codec mapping). At most 8 frames fit an index.
func vp9Superframe(frames [][]byte) []byte {
	if len(frames) == 1 {
		return frames[0]
	}
	biggest := 0
	var out []byte
	for _, f := range frames {
		biggest = max(biggest, len(f))
		out = append(out, f...)
	}
	mag := 1
	for biggest >= 1<<(8*mag) {
		mag++
	}
	marker := byte(0xc0 | (mag-1)<<3 | (len(frames) - 1))
	out = append(out, marker)
	for _, f := range frames {
		for k := range mag {
			out = append(out, byte(len(f)>>(8*k)))
		}
	}
	return append(out, marker)
}
