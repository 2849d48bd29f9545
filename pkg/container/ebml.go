package container

// EBML encoding (RFC 8794): an element is its ID, its data size as a variable-length integer
// (vint: the position of the first set bit gives the length), then its data.

// element encodes an element with the shortest size vint.
func element(id uint32, data []byte) []byte {
	return append(append(idBytes(id), vint(uint64(len(data)))...), data...)
}

// uintElement encodes an unsigned integer element in as few bytes as the value needs.
func uintElement(id uint32, v uint64) []byte {
	n := 1
	for n < 8 && v>>(8*n) != 0 {
		n++
	}
	b := make([]byte, n)
	for i := range n {
		b[i] = byte(v >> (8 * (n - 1 - i)))
	}
	return element(id, b)
}

// vint encodes a size; the all-ones value of each length is reserved for "unknown" (§4.4),
// hence the strict comparison.
func vint(v uint64) []byte {
	n := 1
	for n < 8 && v >= 1<<(7*n)-1 {
		n++
	}
	b := make([]byte, n)
	for i := range n {
		b[i] = byte(v >> (8 * (n - 1 - i)))
	}
	b[0] |= 0x80 >> (n - 1)
	return b
}

// idBytes writes an element ID, which already carries its vint length marker.
func idBytes(id uint32) []byte {
	switch {
	case id > 0xFFFFFF:
		return []byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
	case id > 0xFFFF:
		return []byte{byte(id >> 16), byte(id >> 8), byte(id)}
	case id > 0xFF:
		return []byte{byte(id >> 8), byte(id)}
	}
	return []byte{byte(id)}
}

// void is a Void element of n bytes in all (2 ≤ n ≤ 128), reserving room to be overwritten later
// (RFC 9559 §5.1.1.1, EBML Void).
func void(n int) []byte {
	b := make([]byte, n)
	b[0], b[1] = idVoid, 0x80|byte(n-2)
	return b
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
