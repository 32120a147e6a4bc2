package cli

import "encoding/json"

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// jsonRaw embeds already-encoded JSON.
type jsonRaw []byte

func (r jsonRaw) MarshalJSON() ([]byte, error) { return r, nil }
