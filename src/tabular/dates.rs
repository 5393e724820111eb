//! What a date column becomes: the numbers computed from each date ([`DatePart`]), and
//! their statistics over the training rows, found from the column's category counts (so
//! that a table in memory, a streamed file and the processes' shares, which merge those
//! counts exactly, find the same ones).
//!
//! A date (`2024-03-05`) gives its trend, `time` (days since 1970-01-01, the time of day
//! and the offset counted, so two cells of one instant agree), and its calendar as written
//! (local): `year`, `month`, `day_of_year`, `weekday` (Monday 0), and the day of the year
//! and the weekday as points on a circle (`*_sin`, `*_cos`: 31 December is next to
//! 1 January, Sunday next to Monday). A date-time adds the hour of the day (with minutes
//! and seconds as its fraction) and its circle.

use serde::{Deserialize, Serialize};

use crate::data::cell::{DateTime, days_from_civil, parse_date};
use crate::tabular::stats::{Moments, Order};

/// One number computed from a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatePart {
    /// Days since 1970-01-01 00:00 UTC, with the time of day as the fraction.
    Time,
    /// The calendar year.
    Year,
    /// The month, 1 to 12.
    Month,
    /// The day of the year, 1 (1 January) to 366.
    DayOfYear,
    /// The day of the week, 0 (Monday) to 6 (Sunday).
    Weekday,
    /// The hour of the day, 0 to 24 (minutes and seconds as the fraction).
    Hour,
    /// `sin(2π·(day_of_year − 1) / 365.25)`.
    DayOfYearSin,
    /// `cos(2π·(day_of_year − 1) / 365.25)`.
    DayOfYearCos,
    /// `sin(2π·weekday / 7)`.
    WeekdaySin,
    /// `cos(2π·weekday / 7)`.
    WeekdayCos,
    /// `sin(2π·hour / 24)`.
    HourSin,
    /// `cos(2π·hour / 24)`.
    HourCos,
}

/// Days in a year on average, the period of the day-of-year circle.
pub const YEAR_DAYS: f64 = 365.25;

impl DatePart {
    /// Every part, in the order they are listed in.
    pub const ALL: [DatePart; 12] = [
        DatePart::Time,
        DatePart::Year,
        DatePart::Month,
        DatePart::DayOfYear,
        DatePart::Weekday,
        DatePart::Hour,
        DatePart::DayOfYearSin,
        DatePart::DayOfYearCos,
        DatePart::WeekdaySin,
        DatePart::WeekdayCos,
        DatePart::HourSin,
        DatePart::HourCos,
    ];

    /// The part's name, as the model file writes it.
    pub fn label(self) -> &'static str {
        match self {
            DatePart::Time => "time",
            DatePart::Year => "year",
            DatePart::Month => "month",
            DatePart::DayOfYear => "day_of_year",
            DatePart::Weekday => "weekday",
            DatePart::Hour => "hour",
            DatePart::DayOfYearSin => "day_of_year_sin",
            DatePart::DayOfYearCos => "day_of_year_cos",
            DatePart::WeekdaySin => "weekday_sin",
            DatePart::WeekdayCos => "weekday_cos",
            DatePart::HourSin => "hour_sin",
            DatePart::HourCos => "hour_cos",
        }
    }

    /// Whether the part is about the time of day (only date-times get those).
    pub fn of_the_day(self) -> bool {
        matches!(self, DatePart::Hour | DatePart::HourSin | DatePart::HourCos)
    }

    /// The part's value for `date`, in `f64`.
    pub fn value(self, date: &DateTime) -> f64 {
        let days = days_from_civil(date.year, date.month, date.day);
        let day_of_year = (days - days_from_civil(date.year, 1, 1) + 1) as f64;
        let weekday = (days + 3).rem_euclid(7) as f64; // 1970-01-01 was a Thursday
        let hour = date.seconds / 3600.0;
        let turn = std::f64::consts::TAU;
        match self {
            DatePart::Time => {
                days as f64 + (date.seconds - date.offset_minutes as f64 * 60.0) / 86_400.0
            }
            DatePart::Year => date.year as f64,
            DatePart::Month => date.month as f64,
            DatePart::DayOfYear => day_of_year,
            DatePart::Weekday => weekday,
            DatePart::Hour => hour,
            DatePart::DayOfYearSin => (turn * (day_of_year - 1.0) / YEAR_DAYS).sin(),
            DatePart::DayOfYearCos => (turn * (day_of_year - 1.0) / YEAR_DAYS).cos(),
            DatePart::WeekdaySin => (turn * weekday / 7.0).sin(),
            DatePart::WeekdayCos => (turn * weekday / 7.0).cos(),
            DatePart::HourSin => (turn * hour / 24.0).sin(),
            DatePart::HourCos => (turn * hour / 24.0).cos(),
        }
    }

    /// The part's value for `date` as a network input starts: `f32`.
    pub fn input(self, date: &DateTime) -> f32 {
        self.value(date) as f32
    }
}

/// The parts a date column gets: every part, without those of the time of day unless some
/// cell holds a time.
pub fn parts_for(has_time: bool) -> Vec<DatePart> {
    (DatePart::ALL.into_iter())
        .filter(|p| has_time || !p.of_the_day())
        .collect()
}

/// One part's values over the training rows, from the column's categories and how often
/// the training rows hold each: sorted, with their counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Weighted {
    sorted: Vec<(f32, u64)>,
    n: u64,
}

impl Weighted {
    /// The values of `part` over `counts` (each date's text and its training count).
    pub fn of<'a>(part: DatePart, counts: impl Iterator<Item = (&'a str, u64)>) -> Weighted {
        let mut sorted: Vec<(f32, u64)> = counts
            .filter(|&(_, n)| n > 0)
            .filter_map(|(text, n)| Some((part.input(&parse_date(text)?), n)))
            .collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = sorted.iter().map(|&(_, n)| n).sum();
        Weighted { sorted, n }
    }

    /// How many values (training rows) there are.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// The value at `rank` (0 for the smallest) among all of them.
    ///
    /// **Panics** if `rank` is not below [`Weighted::count`].
    pub fn at(&self, rank: u64) -> f32 {
        let mut seen = 0;
        for &(v, n) in &self.sorted {
            seen += n;
            if rank < seen {
                return v;
            }
        }
        panic!("rank {rank} of {} values", self.n)
    }

    /// Their count, mean and deviation, exactly as [`Moments::of`] all the values.
    pub fn moments(&self) -> Moments {
        let mut m = Moments::default();
        for &(v, n) in &self.sorted {
            (0..n).for_each(|_| m.add(v));
        }
        m
    }

    /// The order statistics the fit needs, as
    /// [`order_in_memory`](crate::tabular::encoding::order_in_memory) finds them for a
    /// number column: the median (`median`), the values at `ranks` (`quantiles`, for bins)
    /// and the median and scale of robust scaling (`robust`).
    pub fn order(&self, median: bool, ranks: Option<Vec<u64>>, robust: bool) -> Order {
        let mut order = Order::default();
        if self.n == 0 {
            order.robust = robust.then_some((0.0, 1.0));
            return order;
        }
        if median {
            order.median = Some(self.median());
        }
        if let Some(ranks) = ranks {
            order.quantiles = ranks.into_iter().map(|r| self.at(r)).collect();
        }
        if robust {
            order.robust = Some(self.median_scale());
        }
        order
    }

    /// As [`crate::tabular::encoding::median`].
    fn median(&self) -> f32 {
        let n = self.n;
        if n % 2 == 1 {
            self.at(n / 2)
        } else {
            ((self.at(n / 2 - 1) as f64 + self.at(n / 2) as f64) / 2.0) as f32
        }
    }

    /// As [`crate::tabular::encoding::median_scale`].
    fn median_scale(&self) -> (f64, f64) {
        let last = self.n - 1;
        let quantile = |q: f64| {
            let at = q * last as f64;
            let (lo, frac) = (at.floor() as u64, at.fract());
            let hi = (lo + 1).min(last);
            let (lo, hi) = (self.at(lo) as f64, self.at(hi) as f64);
            lo + (hi - lo) * frac
        };
        let median = quantile(0.5);
        let iqr = quantile(0.75) - quantile(0.25);
        let half_range = 0.5 * (self.at(last) as f64 - self.at(0) as f64);
        let scale = [iqr, half_range]
            .into_iter()
            .find(|s| *s > 0.0 && s.is_finite())
            .unwrap_or(1.0);
        (median, scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tabular::encoding::{median, median_scale, quantile_ranks};

    fn values(text: &str) -> Vec<f64> {
        let date = parse_date(text).unwrap();
        parts_for(date.has_time)
            .iter()
            .map(|p| p.value(&date))
            .collect()
    }

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-9, "{got:?} vs {want:?}");
        }
    }

    // Python:
    //   d = date(2024, 3, 5); (d - date(1970, 1, 1)).days = 19787; d.timetuple().tm_yday = 65
    //   d.weekday() = 1 (Tuesday); a = 2π·64/365.25; sin(a), cos(a) = 0.891640, 0.452745
    //   w = 2π/7: sin(w), cos(w) = 0.781831, 0.623490
    #[test]
    #[allow(clippy::excessive_precision)]
    fn a_date_gives_its_trend_and_calendar() {
        let a = std::f64::consts::TAU * 64.0 / 365.25;
        let w = std::f64::consts::TAU / 7.0;
        close(
            &values("2024-03-05"),
            &[
                19_787.0,
                2024.0,
                3.0,
                65.0,
                1.0,
                a.sin(),
                a.cos(),
                w.sin(),
                w.cos(),
            ],
        );
        assert!((a.sin() - 0.891_640).abs() < 1e-6 && (a.cos() - 0.452_745).abs() < 1e-6);
        assert_eq!(
            parts_for(false)
                .iter()
                .map(|p| p.label())
                .collect::<Vec<_>>(),
            [
                "time",
                "year",
                "month",
                "day_of_year",
                "weekday",
                "day_of_year_sin",
                "day_of_year_cos",
                "weekday_sin",
                "weekday_cos"
            ]
        );
    }

    #[test]
    fn leap_years_count_their_extra_day() {
        // 31 December is day 366 in 2024 and 2000, 365 in 2023 and 1900.
        for (date, day) in [
            ("2024-12-31", 366.0),
            ("2000-12-31", 366.0),
            ("2023-12-31", 365.0),
            ("1900-12-31", 365.0),
            ("2024-03-01", 61.0),
            ("2023-03-01", 60.0),
        ] {
            assert_eq!(DatePart::DayOfYear.value(&parse_date(date).unwrap()), day);
        }
        // 2024-02-29 was a Thursday, 1 March 2024 a Friday.
        let weekday = |d| DatePart::Weekday.value(&parse_date(d).unwrap());
        assert_eq!((weekday("2024-02-29"), weekday("2024-03-01")), (3.0, 4.0));
        assert_eq!(weekday("1970-01-01"), 3.0);
        assert_eq!(weekday("1969-12-28"), 6.0); // a Sunday before the epoch
    }

    // Python: datetime(2024, 3, 5, 23, 30, tzinfo=timezone(timedelta(hours=-5))) is
    //   2024-03-06 04:30 UTC: 19788 + 4.5/24 = 19788.1875 days.
    #[test]
    fn an_offset_moves_the_instant_but_not_the_calendar() {
        let got = values("2024-03-05T23:30-05:00");
        assert_eq!(got.len(), 12);
        let by = |p: DatePart| got[parts_for(true).iter().position(|&q| q == p).unwrap()];
        assert_eq!(by(DatePart::Time), 19_788.187_5);
        assert_eq!(by(DatePart::Month), 3.0);
        assert_eq!(by(DatePart::DayOfYear), 65.0);
        assert_eq!(by(DatePart::Weekday), 1.0); // still Tuesday where it was written
        assert_eq!(by(DatePart::Hour), 23.5);
        // The same instant in UTC, and with `Z`.
        let utc = values("2024-03-06T04:30:00Z");
        assert_eq!(utc[0], 19_788.187_5);
        assert_eq!(values("2024-03-06 04:30")[0], 19_788.187_5);
    }

    #[test]
    fn weighted_order_statistics_equal_those_of_every_value() {
        let counts = [
            ("2024-01-01", 3u64),
            ("2023-06-15", 1),
            ("2024-12-31", 0), // a validation row only
            ("2022-02-02", 2),
        ];
        for part in [DatePart::Time, DatePart::Month, DatePart::DayOfYearCos] {
            let w = Weighted::of(part, counts.iter().map(|&(t, n)| (t, n)));
            let every: Vec<f32> = (counts.iter())
                .flat_map(|&(t, n)| {
                    std::iter::repeat_n(part.input(&parse_date(t).unwrap()), n as usize)
                })
                .collect();
            assert_eq!(w.count(), 6);
            assert_eq!(w.moments(), Moments::of(every.iter().copied()));
            let order = w.order(true, Some(quantile_ranks(6, 4)), true);
            assert_eq!(order.median, median(every.iter().copied()));
            assert_eq!(order.robust, Some(median_scale(every.iter().copied())));
            let mut sorted = every.clone();
            sorted.sort_by(f32::total_cmp);
            let want: Vec<f32> = (quantile_ranks(6, 4).iter())
                .map(|&r| sorted[r as usize])
                .collect();
            assert_eq!(order.quantiles, want);
        }
    }
}
