//go:build linux

package agent

import (
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"
)

// Terminal mode opcodes of RFC 4254 section 8 that map to termios.
var (
	modeChars = map[byte]int{
		1: unix.VINTR, 2: unix.VQUIT, 3: unix.VERASE, 4: unix.VKILL, 5: unix.VEOF,
		6: unix.VEOL, 7: unix.VEOL2, 8: unix.VSTART, 9: unix.VSTOP, 10: unix.VSUSP,
		12: unix.VREPRINT, 13: unix.VWERASE, 14: unix.VLNEXT, 18: unix.VDISCARD,
	}
	modeIflags = map[byte]uint32{
		30: unix.IGNPAR, 31: unix.PARMRK, 32: unix.INPCK, 33: unix.ISTRIP, 34: unix.INLCR,
		35: unix.IGNCR, 36: unix.ICRNL, 38: unix.IXON, 39: unix.IXANY, 40: unix.IXOFF,
		41: unix.IMAXBEL, 42: unix.IUTF8,
	}
	modeLflags = map[byte]uint32{
		50: unix.ISIG, 51: unix.ICANON, 53: unix.ECHO, 54: unix.ECHOE, 55: unix.ECHOK,
		56: unix.ECHONL, 57: unix.NOFLSH, 58: unix.TOSTOP, 59: unix.IEXTEN, 60: unix.ECHOCTL,
		61: unix.ECHOKE, 62: unix.PENDIN,
	}
	modeOflags = map[byte]uint32{70: unix.OPOST, 72: unix.ONLCR, 73: unix.OCRNL, 74: unix.ONOCR, 75: unix.ONLRET}
)

// applyModes sets the terminal modes a pty-req carries on tty. Unknown
// opcodes are skipped; parsing stops at the first malformed entry.
func applyModes(tty *os.File, modes string) error {
	if modes == "" {
		return nil
	}
	fd := int(tty.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	b := []byte(modes)
	for len(b) >= 5 && b[0] != 0 && b[0] < 160 {
		op, v := b[0], binary.BigEndian.Uint32(b[1:5])
		b = b[5:]
		set := func(flags *uint32, bit uint32) {
			if v != 0 {
				*flags |= bit
			} else {
				*flags &^= bit
			}
		}
		if c, ok := modeChars[op]; ok {
			t.Cc[c] = uint8(v)
		} else if bit, ok := modeIflags[op]; ok {
			set(&t.Iflag, bit)
		} else if bit, ok := modeLflags[op]; ok {
			set(&t.Lflag, bit)
		} else if bit, ok := modeOflags[op]; ok {
			set(&t.Oflag, bit)
		}
	}
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
