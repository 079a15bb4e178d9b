// Package route decides which endpoints get a message, with IoT Hub's
// routing query language, routes, fallback route and enrichments.
//
// [Compile] turns a condition into a [Condition]; [Table] is the default
// [Router]: routes per source, the fallback route, enrichments per
// endpoint, configuration replaced at run time without locks, and dry
// runs. Conditions behave as in IoT Hub (and IoT Edge, which shares its
// compiler), error texts and positions included.
//
// # The language
//
// A condition is an expression over the message:
//
//		processingPath = 'hot' AND as_number(severity) >= 3
//		$body.Weather.Temperature > 50 OR $twin.tags.floor = '1'
//		(missing ?? 'cold') = 'cold'
//
//	  - name: the application property name (case-insensitive), a string.
//	  - $name: an application property literally named $name if there is
//	    one, else the system property ($messageId, $correlationId, $userId,
//	    $to, $contentType, $contentEncoding, $enqueuedTime,
//	    $connectionDeviceId, $connectionModuleId,
//	    $connectionDeviceGenerationId, $connectionAuthMethod,
//	    $dt-dataschema, $dt-subject, $iothub-creation-time-utc). {$name}
//	    reads only the system property. $enqueuedTime reads as
//	    yyyy-MM-ddTHH:mm:ss.fffffffZ, so string comparison orders times.
//	  - $body.a.b[0].c: a member of a JSON body. The content type must be
//	    application/json (parameters ignored) and the encoding utf-8, utf-16
//	    or utf-32 (little-endian), from the content encoding or else the
//	    charset parameter. Member names are case-sensitive.
//	  - $twin.tags.x, $twin.properties.desired.x, $twin.properties.reported.x:
//	    the sender's twin, member names case-insensitive.
//	  - literals: 'text' or "text" (escapes \' \" \\ \uXXXX), numbers
//	    (all IEEE-754 doubles, hex 0x1F), true, false, null, undefined
//	    (lowercase only).
//	  - operators, loosest first: ??; OR; AND; = != <>; < <= > >=; + - ||;
//	    * / %; then unary - and NOT, which bind tightest: NOT a = b means
//	    (NOT a) = b.
//	  - functions: abs, exp, power, square, ceiling, floor, sign, sqrt,
//	    as_number, is_bool, is_number, is_string, is_null, is_defined,
//	    is_array, is_object, is_primitive, concat, length, lower, upper,
//	    substring, index_of, starts_with, ends_with, contains.
//
// Types are checked when a condition compiles: properties are strings, so
// temperature > 30 is an error; write as_number(temperature) > 30.
// $body and $twin values are typed per message. A missing value is
// undefined, and logic is three-valued; a route matches only when its
// condition is exactly true.
//
// Warning: identifiers may contain + - * ! | and more, so a+1, x||y and
// key!='x' are single names, and x -1 is a name and the number -1. Put
// spaces around every operator. The words SELECT, FROM, WHERE and INTO
// (any case) are reserved, as in IoT Hub: a property with such a name
// cannot be named in a condition.
//
// # Differences from IoT Hub
//
// Strings compare and measure by bytes and runes rather than UTF-16 code
// units, which differs only for text beyond the Basic Multilingual Plane.
// A $body path that is not present is undefined (as documented), not null
// (as IoT Edge does). Strings that look like dates stay strings. Bodies
// are parsed as strict JSON nested at most 64 deep. hubkit's system
// properties are a fixed set, so {$name} for any other name is undefined.
package route
