package agent

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ReadLines calls emit with each line that r holds, without its "\n" or
// "\r\n", until r ends or fails; a last line without a newline counts. A
// line longer than limit bytes is cut to its first limit bytes, the rest
// dropped. Node and controller read JSON lines of each other with it.
func ReadLines(r io.Reader, limit int, emit func(line string)) {
	br := bufio.NewReaderSize(r, min(limit, 64<<10))
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		complete := err == nil
		if complete {
			chunk = chunk[:len(chunk)-1]
		}
		line = append(line, chunk[:min(len(chunk), limit-len(line))]...)
		ended := err != nil && !errors.Is(err, bufio.ErrBufferFull)
		if complete || (ended && len(line) > 0) {
			emit(string(bytes.TrimSuffix(line, []byte("\r"))))
			line = line[:0]
		}
		if ended {
			return
		}
	}
}
