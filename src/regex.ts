/** `text` as a regex matching itself literally (names put into generated patterns). */
export const escapeRegex = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
