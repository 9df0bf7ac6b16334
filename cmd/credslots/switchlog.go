package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gptme/credslots/internal/atomicfile"
)

// logName is the switch log's file name in the creds dir.
const logName = ".credslots-switches.jsonl"

// logEntry is one line of the switch log.
type logEntry struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"` // "switch" or "heal"
	Sub    string    `json:"sub"`
	Reason string    `json:"reason"`
}

// appendLog adds e to the switch log, rewriting the file atomically (0600).
func appendLog(dir string, e logEntry) error {
	path := filepath.Join(dir, logName)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	e.Time = e.Time.Truncate(time.Second)
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if len(old) > 0 && !bytes.HasSuffix(old, []byte("\n")) {
		old = append(old, '\n')
	}
	return atomicfile.WriteFile(atomicfile.OS{}, path, append(append(old, line...), '\n'))
}

// readLog returns the switch log's entries, oldest first; a missing log has
// none, and lines that do not parse are skipped.
func readLog(dir string) ([]logEntry, error) {
	data, err := os.ReadFile(filepath.Join(dir, logName))
	if errors.Is(err, fs.ErrNotExist) {
		return []logEntry{}, nil
	}
	if err != nil {
		return nil, err
	}
	entries := []logEntry{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		var e logEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Sub != "" {
			entries = append(entries, e)
		}
	}
	return entries, sc.Err()
}

// lastSwitched is the sub of the newest switch or heal in the log.
func lastSwitched(dir string) (string, error) {
	entries, err := readLog(dir)
	if err != nil {
		return "", err
	}
	for i := len(entries) - 1; i >= 0; i-- {
		if a := entries[i].Action; a == "switch" || a == "heal" {
			return entries[i].Sub, nil
		}
	}
	return "", fmt.Errorf("heal --auto: no switch recorded in %s; name the sub", filepath.Join(dir, logName))
}
