// Shared vocabulary of the declarative catalogs: a member is a named byte range of a structure,
// a field is a VMCS encoding that maps onto a member.

export type ScalarType = 'u16' | 'u32' | 'u64' | 'natural';

/** natural_width is a u64 typedef in KVM on every host width (kernel-facts §2). */
export const TYPE_SIZE: Readonly<Record<ScalarType, number>> = { u16: 2, u32: 4, u64: 8, natural: 8 };

export interface MemberSpec {
  readonly name: string;
  readonly offset: number;
  readonly type: ScalarType;
  /** element count for arrays (1 for scalars) */
  readonly count: number;
  /** reserved space: padding, dead space; never holds a field */
  readonly padding: boolean;
  /** the C spelling where it says more than `type` (e.g. struct vmcs_hdr) */
  readonly ctype?: string;
  readonly size: number;
}

export interface MemberOptions {
  count?: number;
  padding?: boolean;
  ctype?: string;
}

export function member(name: string, offset: number, type: ScalarType, opts: MemberOptions = {}): MemberSpec {
  const count = opts.count ?? 1;
  return {
    name,
    offset,
    type,
    count,
    padding: opts.padding ?? false,
    ...(opts.ctype !== undefined ? { ctype: opts.ctype } : {}),
    size: TYPE_SIZE[type] * count,
  };
}

export interface FieldSpec {
  readonly encoding: number;
  /** the VMCS field name as in enum vmcs_field */
  readonly name: string;
  readonly member: string;
  /** FIELD64: the encoding also has a _HIGH twin (encoding | 1) for bits 63:32 */
  readonly has64High: boolean;
}

export const field = (encoding: number, name: string, memberName: string): FieldSpec => ({
  encoding,
  name,
  member: memberName,
  has64High: false,
});

export const field64 = (encoding: number, name: string, memberName: string): FieldSpec => ({
  encoding,
  name,
  member: memberName,
  has64High: true,
});
