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
  const fields = new Map<number, Buffer | number>();
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
    switch (tag & 7) {
      case 0: fields.set(field, varint()); break;
      case 2: {
        const len = varint();
        if (i + len > buf.length) throw new ProtobufError('truncated field');
        fields.set(field, buf.subarray(i, i + len));
        i += len;
        break;
      }
      case 1: i += 8; break;
      case 5: i += 4; break;
      default: throw new ProtobufError(`unsupported wire type ${tag & 7}`);
    }
  }
  return fields;
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
