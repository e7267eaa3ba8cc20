//go:build ignore

// Gen writes the two JSON files that main.go embeds, from the schema.json and
// terraform-mapping.json in the provider module's cmd/pulumi-resource-kubernetes
// folder. It sets the schema's "version" field, as upstream's release-time
// generator (generate.go in that folder) does, so that the schema the plugin
// returns from GetSchema names the plugin's own version.
//
// Usage: go run gen.go -src DIR -out DIR -version 4.25.0
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	src := flag.String("src", "", "folder with schema.json and terraform-mapping.json")
	out := flag.String("out", "", "folder to write schema-embed.json and terraform-mapping-embed.json to")
	version := flag.String("version", "", "provider version to write into the schema, without a leading v")
	flag.Parse()
	if *src == "" || *out == "" || *version == "" {
		fmt.Fprintln(os.Stderr, "gen: -src, -out and -version are required")
		os.Exit(2)
	}
	if err := writeSchema(*src, *out, *version); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if err := writeMapping(*src, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// writeSchema decodes only the top level of the schema, so every other value
// is copied through unchanged (json.Marshal compacts it).
func writeSchema(src, out, version string) error {
	schema, err := readObject(filepath.Join(src, "schema.json"))
	if err != nil {
		return err
	}
	versionJSON, err := json.Marshal(version)
	if err != nil {
		return err
	}
	schema["version"] = versionJSON
	return writeJSON(filepath.Join(out, "schema-embed.json"), schema)
}

func writeMapping(src, out string) error {
	mapping, err := readObject(filepath.Join(src, "terraform-mapping.json"))
	if err != nil {
		return err
	}
	return writeJSON(filepath.Join(out, "terraform-mapping-embed.json"), mapping)
}

func readObject(path string) (map[string]json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var object map[string]json.RawMessage
	if err := json.Unmarshal(data, &object); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return object, nil
}

func writeJSON(path string, value map[string]json.RawMessage) error {
	data, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return os.WriteFile(path, data, 0o644)
}
