// Name rules as the Kubernetes API server applies them, so a folder that loads
// here would also be accepted by a real cluster (and vice versa).

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** RFC 1123 label: cluster, node and namespace names. Returns a reason, or undefined when valid. */
export function checkDnsLabel(value: string): string | undefined {
  if (value.length > 63) return 'must be at most 63 characters';
  if (!DNS_LABEL.test(value)) {
    return 'must be a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit';
  }
  return undefined;
}

/** RFC 1035 label: Service names (they become DNS names that must not start with a digit). */
export function checkDns1035Label(value: string): string | undefined {
  if (value.length > 63) return 'must be at most 63 characters';
  if (!DNS_1035_LABEL.test(value)) {
    return 'must be a DNS-1035 label: lowercase letters, digits and "-", starting with a letter and ending with a letter or digit';
  }
  return undefined;
}

/** RFC 1123 subdomain: most object names. */
export function checkDnsSubdomain(value: string): string | undefined {
  if (value.length > 253) return 'must be at most 253 characters';
  if (!value.split('.').every((part) => DNS_LABEL.test(part))) {
    return 'must be a DNS subdomain: dot-separated lowercase labels of letters, digits and "-"';
  }
  return undefined;
}

export function checkLabelKey(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && checkDnsSubdomain(prefix) !== undefined) {
    return `label key prefix "${prefix}" must be a DNS subdomain`;
  }
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) {
    return 'label key name must be 1-63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit';
  }
  return undefined;
}

export function checkLabelValue(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63 || !LABEL_NAME.test(value)) {
    return 'label value must be at most 63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit';
  }
  return undefined;
}

/** Port names (container and service target ports), IANA service name syntax. */
export function checkPortName(value: string): string | undefined {
  if (value.length > 15) return 'port name must be at most 15 characters';
  if (!IANA_SVC_NAME.test(value) || value.includes('--') || !/[a-z]/.test(value)) {
    return 'port name must be lowercase letters, digits and single "-", contain a letter, and not start or end with "-"';
  }
  return undefined;
}
