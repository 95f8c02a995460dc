// DynamoDB wire values ({"S": ...}, {"N": "1.50"}, {"M": {...}}) as plain JSON text, the
// way stores/dynamodb/wire_columns.py writes them for the scan path: Snowflake runs this
// file as the body of two temporary JavaScript UDFs when an export is copied from S3, so
// a json or set column and the _attributes column hold the same values by either path.
// Numbers are written from DynamoDB's text, never through a JavaScript number (which
// would round past 15 digits); sets are sorted as Python sorts strings (by code point).
// Each UDF appends its own return statement: wireJson(V) or extras(ITEM, DECLARED).

function byCodePoint(a, b) {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a.codePointAt(i);
    const y = b.codePointAt(j);
    if (x !== y) {
      return x < y ? -1 : 1;
    }
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  return (i < a.length ? 1 : 0) - (j < b.length ? 1 : 0);
}

// Python's Decimal, for the rare number in exponent form: an integral value in plain
// digits (format(d, "f")), any other as str(d) does.
function numberText(text) {
  if (!/[eE]/.test(text)) {
    return text;
  }
  const m = /^([+-]?)(\d*)(?:\.(\d*))?[eE]([+-]?\d+)$/.exec(text);
  if (m === null) {
    throw new Error("not a DynamoDB number: " + text);
  }
  const sign = m[1] === "-" ? "-" : "";
  const whole = m[2];
  const frac = m[3] || "";
  let digits = (whole + frac).replace(/^0+/, "") || "0";
  const exponent = parseInt(m[4], 10) - frac.length;
  if (exponent >= 0) {
    return sign + (digits === "0" ? "0" : digits + "0".repeat(exponent));
  }
  const point = digits.length + exponent; // digits before the decimal point
  const fraction = point > 0 ? digits.slice(point) : "0".repeat(-point) + digits;
  if (/^0*$/.test(fraction)) {
    // integral: format(d, "f") keeps the zeros the exponent implies
    return sign + (point > 0 ? digits.slice(0, point) : "0") + "." + fraction;
  }
  const adjusted = exponent + digits.length - 1;
  if (adjusted >= -6) {
    return sign + (point > 0 ? digits.slice(0, point) : "0") + "." + fraction;
  }
  const rest = digits.slice(1);
  return sign + digits[0] + (rest ? "." + rest : "") + "E" + adjusted;
}

function wireJson(v) {
  const kinds = Object.keys(v);
  if (kinds.length !== 1) {
    throw new Error("not a DynamoDB value: " + JSON.stringify(v));
  }
  const kind = kinds[0];
  const x = v[kind];
  switch (kind) {
    case "S":
    case "B":
      return JSON.stringify(x);
    case "N":
      return numberText(x);
    case "BOOL":
      return x ? "true" : "false";
    case "NULL":
      return "null";
    case "M":
      return "{" + Object.keys(x).map((k) => JSON.stringify(k) + ":" + wireJson(x[k])).join(",") + "}";
    case "L":
      return "[" + x.map(wireJson).join(",") + "]";
    case "SS":
    case "BS":
      return "[" + x.slice().sort(byCodePoint).map((s) => JSON.stringify(s)).join(",") + "]";
    case "NS":
      return "[" + x.slice().sort(byCodePoint).map(numberText).join(",") + "]";
    default:
      throw new Error("unknown DynamoDB type " + kind);
  }
}

function extras(item, declared) {
  const rest = Object.keys(item).filter((k) => declared.indexOf(k) < 0);
  if (rest.length === 0) {
    return null;
  }
  return "{" + rest.map((k) => JSON.stringify(k) + ":" + wireJson(item[k])).join(",") + "}";
}
