/**
 * The little protobuf the embedded API server reads: kubectl's typed calls (`kubectl auth can-i`)
 * send their body as `application/vnd.kubernetes.protobuf`, as kube-apiserver accepts for
 * built-in kinds. The envelope is k8s.io/apimachinery's runtime.Unknown after the 4-byte magic
 * "k8s\0" (typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2), and the raw bytes are the kind's
 * message from k8s.io/api's generated.proto. Only SelfSubjectAccessReview is decoded; answers go
 * back as JSON, which these clients also accept.
 */

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

export function isProtobuf(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';')[0]?.trim() === 'application/vnd.kubernetes.protobuf';
}

export class ProtobufError extends Error {}

/** Fields of one message: number -> the last value (varint as number, length-delimited as bytes). */
function readMessage(buf: Buffer): Map<number, Buffer | number> {
  const last = new Map<number, Buffer | number>();
  for (const [field, values] of readRepeated(buf)) {
    const v = values[values.length - 1];
    if (v !== undefined) last.set(field, v);
  }
  return last;
}

const str = (m: Map<number, Buffer | number>, n: number): string | undefined => {
  const v = m.get(n);
  return Buffer.isBuffer(v) ? v.toString('utf8') : undefined;
};
const msg = (m: Map<number, Buffer | number>, n: number): Map<number, Buffer | number> | undefined => {
  const v = m.get(n);
  return Buffer.isBuffer(v) ? readMessage(v) : undefined;
};

/** A SelfSubjectAccessReview in protobuf, as the JSON object it stands for. */
export function decodeSelfSubjectAccessReview(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw new ProtobufError('protobuf body without the k8s envelope');
  const unknown = readMessage(body.subarray(4));
  const typeMeta = msg(unknown, 1);
  const kind = typeMeta ? str(typeMeta, 2) : undefined;
  if (kind !== 'SelfSubjectAccessReview') throw new ProtobufError(`protobuf body of kind ${JSON.stringify(kind)}; only SelfSubjectAccessReview is read`);
  const review = msg(unknown, 2) ?? new Map<number, Buffer | number>();
  const spec = msg(review, 2) ?? new Map<number, Buffer | number>();
  const ra = msg(spec, 1);
  const nra = msg(spec, 2);
  const resourceAttributes = ra ? Object.fromEntries(Object.entries({
    namespace: str(ra, 1), verb: str(ra, 2), group: str(ra, 3), version: str(ra, 4), resource: str(ra, 5), subresource: str(ra, 6), name: str(ra, 7),
  }).filter(([, v]) => v !== undefined)) : undefined;
  const nonResourceAttributes = nra ? { path: str(nra, 1) ?? '', verb: str(nra, 2) ?? '' } : undefined;
  return { apiVersion: 'authorization.k8s.io/v1', kind, spec: { ...(resourceAttributes ? { resourceAttributes } : {}), ...(nonResourceAttributes ? { nonResourceAttributes } : {}) } };
}

/** Every field of one message: number -> each value, in order (varint as number, length-delimited as bytes; fixed-width skipped). */
function readRepeated(buf: Buffer): Map<number, (Buffer | number)[]> {
  const out = new Map<number, (Buffer | number)[]>();
  let i = 0;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (i >= buf.length) throw new ProtobufError('truncated varint');
      const b = buf[i++] ?? 0;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  };
  while (i < buf.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    let value: Buffer | number;
    switch (tag & 7) {
      case 0: value = varint(); break;
      case 2: {
        const len = varint();
        if (i + len > buf.length) throw new ProtobufError('truncated field');
        value = buf.subarray(i, i + len);
        i += len;
        break;
      }
      case 1: i += 8; continue;
      case 5: i += 4; continue;
      default: throw new ProtobufError(`unsupported wire type ${tag & 7}`);
    }
    out.set(field, [...(out.get(field) ?? []), value]);
  }
  return out;
}

const bytesOf = (m: Map<number, (Buffer | number)[]>, n: number): Buffer[] => (m.get(n) ?? []).filter((v): v is Buffer => Buffer.isBuffer(v));
const text = (m: Map<number, (Buffer | number)[]>, n: number): string | undefined => bytesOf(m, n)[0]?.toString('utf8');

/** A map<string, string|bytes> field: repeated entries {key = 1, value = 2}. */
function mapField(m: Map<number, (Buffer | number)[]>, n: number, base64: boolean): Record<string, string> | undefined {
  const entries = bytesOf(m, n).map(readRepeated);
  if (entries.length === 0) return undefined;
  return Object.fromEntries(entries.map((e) => [text(e, 1) ?? '', base64 ? (bytesOf(e, 2)[0] ?? Buffer.alloc(0)).toString('base64') : text(e, 2) ?? '']));
}

/** ObjectMeta (k8s.io/apimachinery generated.proto): name 1, generateName 2, namespace 3, labels 11, annotations 12, finalizers 14. */
function objectMeta(buf: Buffer | undefined): Record<string, unknown> {
  if (!buf) return {};
  const m = readRepeated(buf);
  const finalizers = bytesOf(m, 14).map((b) => b.toString('utf8'));
  return Object.fromEntries(Object.entries({
    name: text(m, 1), generateName: text(m, 2), namespace: text(m, 3), labels: mapField(m, 11, false), annotations: mapField(m, 12, false),
    finalizers: finalizers.length > 0 ? finalizers : undefined,
  }).filter(([, v]) => v !== undefined));
}

/**
 * A built-in object kubectl's typed `create` commands send as protobuf (`kubectl create namespace |
 * configmap | secret | serviceaccount`, as install guides use them), as the JSON object it stands
 * for: field numbers of k8s.io/api core/v1 generated.proto. Other kinds are refused by the caller.
 */
export function decodeCreatedObject(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw new ProtobufError('protobuf body without the k8s envelope');
  const unknown = readMessage(body.subarray(4));
  const typeMeta = msg(unknown, 1);
  const apiVersion = typeMeta ? str(typeMeta, 1) : undefined;
  const kind = typeMeta ? str(typeMeta, 2) : undefined;
  const raw = unknown.get(2);
  const o = readRepeated(Buffer.isBuffer(raw) ? raw : Buffer.alloc(0));
  const metadata = objectMeta(bytesOf(o, 1)[0]);
  const head = { apiVersion, kind, metadata };
  switch (kind) {
    case 'Namespace': return head;
    case 'ServiceAccount': return head;
    case 'ConfigMap': return { ...head, ...dropUndefined({ data: mapField(o, 2, false), binaryData: mapField(o, 3, true) }) };
    case 'Secret': return { ...head, ...dropUndefined({ data: mapField(o, 2, true), type: text(o, 3), stringData: mapField(o, 4, false) }) };
    default: throw new ProtobufError(`protobuf body of kind ${JSON.stringify(kind)}; this server reads Namespace, ServiceAccount, ConfigMap and Secret in protobuf, every kind in JSON`);
  }
}

function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
