/** What a batch folder holds, as tests count it: each row's sidecar and images, beside the batch's manifest. */
const MANIFEST = new Set(['manifest.json', 'manifest.csv']);

export const isSidecar = (file: string): boolean => file.endsWith('.json') && !MANIFEST.has(file);

export const isImageFile = (file: string): boolean => !file.endsWith('.json') && !file.startsWith('.') && !MANIFEST.has(file);
