package container

// H.264 NAL unit types (ITU-T H.264 Table 7-1).
const (
	naluSlice = 1
	naluIDR   = 5
	naluSEI   = 6
	naluSPS   = 7
	naluPPS   = 8
	naluAUD   = 9
)

// splitAnnexB returns the NAL units of an Annex-B byte stream (ITU-T H.264 Annex B): each follows
// a 00 00 01 start code (a 4-byte 00 00 00 01 is a zero_byte plus that), and trailing zero bytes
// before the next start code belong to no NAL unit (a NAL unit ends with its rbsp_stop_one_bit, so
// its last byte is never 0). Bytes before the first start code are dropped. The NAL units are
// sub-slices of b.
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 {
			continue
		}
		if start >= 0 {
			out = appendNALU(out, b[start:i])
		}
		start = i + 3
		i += 2
	}
	if start >= 0 {
		out = appendNALU(out, b[start:])
	}
	return out
}

func appendNALU(out [][]byte, n []byte) [][]byte {
	for len(n) > 0 && n[len(n)-1] == 0 {
		n = n[:len(n)-1]
	}
	if len(n) == 0 {
		return out
	}
	return append(out, n)
}

func naluType(n []byte) byte { return n[0] & 0x1f }
