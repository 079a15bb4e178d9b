package auth

import "bytes"

// covers reports whether the resource sr of a token (still URL-encoded, as
// sent) grants access to the device or module on the hub named host. The
// decoded resource must be host, optionally followed by a path that is a
// segment prefix of /devices/{device}[/modules/{module}]: "host/devices/a"
// covers device a and its modules, not device ab. Host and ids are compared
// case-insensitively, as IoT Hub recommends lower-casing the resource. A
// ":port" after the host in sr is ignored, because SDKs given a host name
// with a port sign it with the port. An empty device asks whether sr is
// hub-level.
func covers(sr, host, device, module string) bool {
	var buf [256]byte
	b, ok := unescape(buf[:0], sr)
	if !ok {
		return false
	}
	h, path, _ := bytes.Cut(b, []byte{'/'})
	if !equalFold(h, host) {
		i := bytes.LastIndexByte(h, ':')
		if i < 0 || !isDigits(string(h[i+1:])) || !equalFold(h[:i], host) {
			return false
		}
	}
	want := [4]string{"devices", device, "modules", module}
	n := 4
	switch {
	case device == "":
		n = 0 // only the hub itself
	case module == "":
		n = 2
	}
	for i := 0; len(path) > 0; i++ {
		var seg []byte
		seg, path, _ = bytes.Cut(path, []byte{'/'})
		if len(seg) == 0 && len(path) == 0 {
			break // a trailing slash
		}
		if i >= n || !equalFold(seg, want[i]) {
			return false
		}
	}
	return true
}
