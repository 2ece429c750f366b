// Types of subtitles.js (plain JavaScript so the web page can load it too).
export interface TimedText {
  start: number;
  end: number;
  text: string;
}
export declare function timecode(seconds: number, decimalMarker: ',' | '.'): string;
export declare function cueText(text: string): string;
export declare function toSrt(segments: readonly TimedText[]): string;
export declare function toVtt(segments: readonly TimedText[]): string;
