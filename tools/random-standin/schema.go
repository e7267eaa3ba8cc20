package main

// packageSchema is the Pulumi package schema this stand-in returns from
// GetSchema. It describes only the one resource it serves. Its property
// names, types and secret markers are those of the real random 4.19.0
// schema, so tools that read the schema (the YAML language host, SDK
// generators) see the same RandomPassword as with the real plugin.
const packageSchema = `{
  "name": "random",
  "displayName": "random (stand-in)",
  "version": "4.19.0",
  "description": "STAND-IN for the random provider plugin, serving only RandomPassword, for machines where the real plugin cannot be installed.",
  "meta": {"moduleFormat": "(.*)(?:/[^/]*)"},
  "config": {},
  "provider": {"description": "The provider type for the random package (stand-in)."},
  "resources": {
    "random:index/randomPassword:RandomPassword": {
      "description": "A random password from a cryptographic random number generator. The result is stored as a secret.",
      "properties": {
        "bcryptHash": {"type": "string", "secret": true, "description": "A bcrypt hash of the generated random string. If the string is longer than 72 bytes, this hashes its first 72 bytes."},
        "keepers": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Arbitrary map of values that, when changed, will trigger recreation of resource."},
        "length": {"type": "integer", "description": "The length of the string desired. The minimum value for length is 1 and, length must also be >= (minUpper + minLower + minNumeric + minSpecial)."},
        "lower": {"type": "boolean", "description": "Include lowercase alphabet characters in the result. Default value is true."},
        "minLower": {"type": "integer", "description": "Minimum number of lowercase alphabet characters in the result. Default value is 0."},
        "minNumeric": {"type": "integer", "description": "Minimum number of numeric characters in the result. Default value is 0."},
        "minSpecial": {"type": "integer", "description": "Minimum number of special characters in the result. Default value is 0."},
        "minUpper": {"type": "integer", "description": "Minimum number of uppercase alphabet characters in the result. Default value is 0."},
        "number": {"type": "boolean", "description": "Include numeric characters in the result. Default value is true.", "deprecationMessage": "**NOTE**: This is deprecated, use numeric instead."},
        "numeric": {"type": "boolean", "description": "Include numeric characters in the result. Default value is true."},
        "overrideSpecial": {"type": "string", "description": "Supply your own list of special characters to use for string generation. The special argument must still be true for them to be used beyond minSpecial."},
        "result": {"type": "string", "secret": true, "description": "The generated random string."},
        "special": {"type": "boolean", "description": "Include special characters in the result. These are !@#$%&*()-_=+[]{}<>:? unless overrideSpecial is set. Default value is true."},
        "upper": {"type": "boolean", "description": "Include uppercase alphabet characters in the result. Default value is true."}
      },
      "required": ["bcryptHash", "length", "lower", "minLower", "minNumeric", "minSpecial", "minUpper", "number", "numeric", "result", "special", "upper"],
      "inputProperties": {
        "keepers": {"type": "object", "additionalProperties": {"type": "string"}, "willReplaceOnChanges": true},
        "length": {"type": "integer", "willReplaceOnChanges": true},
        "lower": {"type": "boolean", "willReplaceOnChanges": true},
        "minLower": {"type": "integer", "willReplaceOnChanges": true},
        "minNumeric": {"type": "integer", "willReplaceOnChanges": true},
        "minSpecial": {"type": "integer", "willReplaceOnChanges": true},
        "minUpper": {"type": "integer", "willReplaceOnChanges": true},
        "number": {"type": "boolean", "willReplaceOnChanges": true, "deprecationMessage": "**NOTE**: This is deprecated, use numeric instead."},
        "numeric": {"type": "boolean", "willReplaceOnChanges": true},
        "overrideSpecial": {"type": "string", "willReplaceOnChanges": true},
        "special": {"type": "boolean", "willReplaceOnChanges": true},
        "upper": {"type": "boolean", "willReplaceOnChanges": true}
      },
      "requiredInputs": ["length"]
    }
  }
}`
