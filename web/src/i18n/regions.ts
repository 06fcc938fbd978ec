/**
 * Region names. The API knows regions by code only: the codes of the Russian Federation's federal
 * subjects ("16", "77"), as the e-journal providers are registered. Their names, Russian and English,
 * are the locale files' `regions` table; a code not in it is shown as the code ("Регион 99").
 */
import { useI18n } from 'vue-i18n'

/** The table's key of a code: "7" and "07" are the same subject. */
export function regionKey(code: string): string {
  const c = code.trim()
  return `regions.${/^\d$/.test(c) ? `0${c}` : c}`
}

export function useRegions() {
  const { t, te } = useI18n()
  /** The region's name, or null when the code is not a known subject's. */
  const regionName = (code: string): string | null => {
    const key = regionKey(code)
    return code.trim() && key !== 'regions.unknown' && te(key) ? t(key) : null
  }
  /** What to show for a code: its name, else the code itself. */
  const regionLabel = (code: string): string => regionName(code) ?? t('regions.unknown', { code })
  return { regionName, regionLabel }
}
