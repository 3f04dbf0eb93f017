// Package docs embeds the documents the services serve: the OpenAPI
// description of the API (GET /api/v1/openapi.yaml).
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
