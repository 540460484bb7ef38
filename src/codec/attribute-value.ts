/**
 * One attribute value as DynamoDB's JSON protocol carries it: numbers as strings, binaries as standard padded
 * base64 strings. Each member names one type key and rules the others out (`av.S !== undefined` narrows, as with
 * the AWS SDK's type), so the codec, the crypto envelopes and the stores share it without any driver type.
 */
// prettier-ignore
export interface SMember { S: string; N?: never; B?: never; BOOL?: never; NULL?: never; SS?: never; NS?: never; BS?: never; L?: never; M?: never; }
export interface NMember { N: string; S?: never; B?: never; BOOL?: never; NULL?: never; SS?: never; NS?: never; BS?: never; L?: never; M?: never; }
export interface BMember { B: string; S?: never; N?: never; BOOL?: never; NULL?: never; SS?: never; NS?: never; BS?: never; L?: never; M?: never; }
export interface BOOLMember { BOOL: boolean; S?: never; N?: never; B?: never; NULL?: never; SS?: never; NS?: never; BS?: never; L?: never; M?: never; }
export interface NULLMember { NULL: boolean; S?: never; N?: never; B?: never; BOOL?: never; SS?: never; NS?: never; BS?: never; L?: never; M?: never; }
export interface SSMember { SS: string[]; S?: never; N?: never; B?: never; BOOL?: never; NULL?: never; NS?: never; BS?: never; L?: never; M?: never; }
export interface NSMember { NS: string[]; S?: never; N?: never; B?: never; BOOL?: never; NULL?: never; SS?: never; BS?: never; L?: never; M?: never; }
export interface BSMember { BS: string[]; S?: never; N?: never; B?: never; BOOL?: never; NULL?: never; SS?: never; NS?: never; L?: never; M?: never; }
export interface LMember { L: AttributeValue[]; S?: never; N?: never; B?: never; BOOL?: never; NULL?: never; SS?: never; NS?: never; BS?: never; M?: never; }
export interface MMember { M: Record<string, AttributeValue>; S?: never; N?: never; B?: never; BOOL?: never; NULL?: never; SS?: never; NS?: never; BS?: never; L?: never; }

export type AttributeValue =
  | SMember
  | NMember
  | BMember
  | BOOLMember
  | NULLMember
  | SSMember
  | NSMember
  | BSMember
  | LMember
  | MMember;

export type Item = Record<string, AttributeValue>;

/** Bytes a B value (or BS element) holds: its decoded length, not the length of its base64 text. */
export function binaryLength(b64: string): number {
  return Buffer.byteLength(b64, 'base64');
}
